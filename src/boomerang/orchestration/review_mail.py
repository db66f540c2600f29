"""The monthly review's email: an HTML part (Jinja, autoescaped; charts as table bars with inline styles, since
mail readers run no script and load no outside image) and a text part."""

HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Monthly review, {{ r.period.label }}</title></head>
<body style="margin:0;padding:16px;background:#f5f6f8;font-family:Arial,Helvetica,sans-serif;color:#1f2430">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:640px;margin:0 auto;background:#fff;border-radius:8px">
<tr><td style="padding:20px">
<h1 style="font-size:20px;margin:0 0 4px">Monthly review, {{ r.period.label }}</h1>
<p style="color:#667;margin:0 0 16px;font-size:13px">
{% if r.before.comparable %}Against {{ r.before.label }}{% if not r.period.complete %} (the same days: the data ends {{ r.last_day }}){% endif %}.{% else %}No earlier month in the data to compare with.{% endif %}
{% if currency %} Money in {{ currency }}.{% endif %}</p>

<h2 style="font-size:16px;margin:16px 0 8px">Key numbers</h2>
<table role="presentation" width="100%" cellpadding="4" cellspacing="0" style="font-size:14px;border-collapse:collapse">
{% for k in kpis %}
<tr style="border-bottom:1px solid #eee"><td>{{ k.label }}</td><td align="right"><b>{{ k.value }}</b></td>
<td align="right" style="color:{{ '#1a7f37' if k.good else '#b42318' if k.good is false else '#667' }}">{{ k.change }}</td></tr>
{% endfor %}
</table>

<h2 style="font-size:16px;margin:20px 0 8px">Funnel</h2>
<table role="presentation" width="100%" cellpadding="3" cellspacing="0" style="font-size:13px">
{% for b in funnel %}
<tr><td width="35%">{{ b.label }}</td><td><div style="background:#4f7cff;height:12px;width:{{ b.width }}%"></div></td>
<td align="right" width="15%">{{ '{:,}'.format(b.value) }}</td></tr>
{% endfor %}
</table>
{% if r.funnel.leaks %}
<p style="font-size:13px;margin:8px 0 0"><b>The biggest leaks:</b></p>
<ol style="font-size:13px;margin:4px 0 0;padding-left:20px">
{% for l in r.funnel.leaks %}<li>{{ l.from }} → {{ l.to }}: {{ '{:,}'.format(l.lost) }} customers lost{% if l.drop_off is not none %} ({{ '%.1f'|format(l.drop_off * 100) }}% drop-off){% endif %}</li>
{% endfor %}
</ol>
{% endif %}

<h2 style="font-size:16px;margin:20px 0 8px">What journeys and campaigns changed</h2>
{% if tests %}
<table role="presentation" width="100%" cellpadding="3" cellspacing="0" style="font-size:13px">
{% for t in tests %}
<tr><td width="35%">{{ t.title }} <span style="color:#667">({{ t.kind }})</span></td>
<td><div style="background:{{ '#1a7f37' if t.verdict == 'better' else '#b42318' if t.verdict == 'worse' else '#98a2b3' }};height:12px;width:{{ t.bar.width }}%"></div></td>
<td align="right" width="30%">{{ money(t.incremental_revenue.effect) }}<br><span style="color:#667">{{ money(t.incremental_revenue.low) }} to {{ money(t.incremental_revenue.high) }}</span></td></tr>
<tr><td colspan="3" style="color:#667;font-size:12px;padding-bottom:8px">{{ t.says }}{% if t.attributed_revenue is not none %} Last touch credits it with {{ money(t.attributed_revenue) }} this month.{% endif %}</td></tr>
{% endfor %}
</table>
<p style="color:#667;font-size:12px">Incremental revenue of the customers who entered each journey in the month (campaigns: those started in it) against their own control group, with its 95% always-valid interval.</p>
{% endif %}
{% for t in untested %}<p style="font-size:13px;margin:4px 0">{{ t.title }} ({{ t.kind }}): {{ t.says }}</p>{% endfor %}
{% if not tests and not untested %}<p style="font-size:13px;color:#667">No journey or campaign has run.</p>{% endif %}

<h2 style="font-size:16px;margin:20px 0 8px">Segments that moved most</h2>
{% if segments %}
<table role="presentation" width="100%" cellpadding="3" cellspacing="0" style="font-size:13px">
{% for b in segments %}
<tr><td width="35%">{{ b.label }}</td><td><div style="background:{{ '#1a7f37' if b.value > 0 else '#b42318' }};height:12px;width:{{ b.width }}%"></div></td>
<td align="right" width="15%">{{ '{:+,}'.format(b.value) }}</td></tr>
{% endfor %}
</table>
{% else %}<p style="font-size:13px;color:#667">No segment changed size this month.</p>{% endif %}

<h2 style="font-size:16px;margin:20px 0 8px">What the guards held back</h2>
<p style="font-size:13px;margin:0 0 6px">{{ '{:,}'.format(r.guards.total) }} messages suppressed, {{ '{:,}'.format(r.guards.sent) }} sent.</p>
{% if guards %}
<table role="presentation" width="100%" cellpadding="3" cellspacing="0" style="font-size:13px">
{% for b in guards %}
<tr><td width="35%">{{ b.label }}</td><td><div style="background:#f79009;height:12px;width:{{ b.width }}%"></div></td>
<td align="right" width="15%">{{ '{:,}'.format(b.value) }}</td></tr>
{% endfor %}
</table>
{% endif %}

<p style="margin:24px 0 0"><a href="{{ url }}" style="background:#4f7cff;color:#fff;padding:10px 16px;border-radius:6px;text-decoration:none">Open the review with its charts</a></p>
</td></tr></table>
</body></html>
"""

TEXT = """Monthly review, {{ r.period.label }}
{% if r.before.comparable %}Against {{ r.before.label }}{% if not r.period.complete %} (the same days){% endif %}.{% else %}No earlier month in the data to compare with.{% endif %}

Key numbers
{% for k in kpis %}- {{ k.label }}: {{ k.value }} {{ k.change }}
{% endfor %}
Biggest funnel leaks
{% for l in r.funnel.leaks %}- {{ l.from }} -> {{ l.to }}: {{ l.lost }} customers lost
{% else %}- none
{% endfor %}
What journeys and campaigns changed (incremental revenue, 95% interval)
{% for t in tests %}- {{ t.title }} ({{ t.kind }}): {{ money(t.incremental_revenue.effect) }} [{{ money(t.incremental_revenue.low) }} to {{ money(t.incremental_revenue.high) }}], {{ t.verdict }}
{% endfor %}{% for t in untested %}- {{ t.title }} ({{ t.kind }}): {{ t.says }}
{% endfor %}
Segments that moved most
{% for b in segments %}- {{ b.label }}: {{ '{:+,}'.format(b.value) }}
{% else %}- none
{% endfor %}
Suppressed by the guards: {{ r.guards.total }} (sent: {{ r.guards.sent }})
{% for b in guards %}- {{ b.label }}: {{ b.value }}
{% endfor %}
Open the review: {{ url }}
"""
