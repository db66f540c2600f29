/* Boomerang web push service worker: shows the notification a push message carries and opens its link on a click.
   The payload is JSON: {"title", "body", "url", "tag", "icon"?}. */

self.addEventListener("push", (event) => {
  let message = {};
  if (event.data) {
    try {
      message = event.data.json();
    } catch (error) {
      message = { body: event.data.text() }; // not JSON: show the text as it came
    }
  }
  const options = { body: message.body || "", data: { url: message.url || null } };
  if (message.tag) options.tag = message.tag; // the same message twice replaces itself
  if (message.icon) options.icon = message.icon;
  event.waitUntil(self.registration.showNotification(message.title || "", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data && event.notification.data.url;
  if (!url) return;
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const tab = open.find((client) => client.url === url && "focus" in client);
    return tab ? tab.focus() : self.clients.openWindow(url);
  })());
});
