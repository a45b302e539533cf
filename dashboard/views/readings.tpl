% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Readings</h1>
<form id="range" class="toolbar">
  <select id="since" aria-label="Range">
    <option value="3600">last hour</option>
    <option value="86400">last day</option>
    <option value="604800">last week</option>
  </select>
</form>
<section id="sensors"></section>
<p id="no-sensors" hidden>No readings yet.</p>
<article id="rules">
  <header>Alert rules</header>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>Rule</th><th>Watches</th><th>State</th><th>Last value</th><th class="admin-only"></th></tr></thead><tbody id="rule-rows"></tbody></table></div>
  <form id="add-rule" class="toolbar admin-only">
    <select name="kind" aria-label="kind"><option value="above">above</option><option value="below">below</option><option value="silent">not heard from</option></select>
    <input name="target" required placeholder="sensor, agent or agent.device" aria-label="target">
    <input name="value" type="number" step="any" placeholder="value" aria-label="value">
    <label>for <input name="minutes" type="number" step="any" min="0" value="5" required aria-label="minutes"> min</label>
    <button type="submit" class="small">Add rule</button>
  </form>
  <form id="place-sensor" class="toolbar admin-only">
    <input name="sensor" required placeholder="sensor" aria-label="sensor">
    <input name="tap" placeholder="at tap" aria-label="tap">
    <input name="fridge" placeholder="in fridge" aria-label="fridge">
    <button type="submit" class="small outline">Place sensor</button>
  </form>
</article>
