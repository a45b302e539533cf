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
