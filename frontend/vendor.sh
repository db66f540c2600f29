#!/bin/sh
# Installs the front-end libraries pinned in package-lock.json and copies the built files, with their
# licences, into the boomerang package, where they are served without a CDN. Run after changing a version:
#   frontend/vendor.sh
# (.npmrc turns install scripts off: swagger-ui-dist's @scarf/scarf would report the install otherwise.)
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
package=../src/boomerang

dashboard=$package/dashboard/static  # Chart.js, for the dashboard's charts
cp node_modules/chart.js/dist/chart.umd.js "$dashboard/chart.umd.js"
cp node_modules/chart.js/LICENSE.md "$dashboard/chart.js.LICENSE.md"

swagger=$package/api/static/swagger  # Swagger UI, for /docs
mkdir -p "$swagger"
for name in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
    cp "node_modules/swagger-ui-dist/$name" "$swagger/$name"
done
