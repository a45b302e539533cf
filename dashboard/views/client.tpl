% rebase('layout', title=title, session=session, page=page, initial=initial)
<hgroup>
  <h1>Client <span id="client-name">{{client['name']}}</span></h1>
  <p id="client-summary"></p>
</hgroup>
<div class="toolbar admin-only">
  <button type="button" class="secondary" data-action="enable">Enable</button>
  <button type="button" class="secondary" data-action="disable">Disable</button>
  <button type="button" class="secondary" data-action="stop-idle">Stop when idle</button>
  <button type="button" class="secondary contrast" data-action="stop-now">Stop now</button>
  <button type="button" class="secondary" data-action="restart-idle">Restart when idle</button>
  <button type="button" class="secondary contrast" data-action="restart-now">Restart now</button>
</div>
<div class="grid">
<article>
  <header><strong>Details</strong></header>
  <table id="details"><tbody></tbody></table>
</article>
<article>
  <header><strong>Sleep schedule</strong></header>
  <p id="schedule-state"></p>
  <form id="schedule-form" class="admin-only">
    <input type="text" id="schedule" name="schedule" placeholder="mon-fri 09:00-19:00, 22:00-06:00" aria-label="Sleep schedule">
    <button type="submit" class="secondary">Set</button>
    <button type="button" class="secondary" id="schedule-clear">Clear</button>
  </form>
  <p><small>Weekly windows in which it takes no new task, in the master's local time.</small></p>
</article>
</div>
<h2>Blocklisted by</h2>
<div class="overflow-auto">
<table class="striped" id="blocklists">
  <thead><tr><th>Job</th><th>Failures</th><th>Blocked</th></tr></thead>
  <tbody></tbody>
</table>
</div>
<h2>Recent tasks</h2>
<div class="overflow-auto">
<table class="striped" id="history">
  <thead><tr><th>Task</th><th>Job</th><th>Frames</th><th>Status</th><th>Exit</th><th>Duration</th><th>Finished</th><th>Error</th></tr></thead>
  <tbody></tbody>
</table>
</div>
<h2>Failures</h2>
<div class="overflow-auto">
<table class="striped" id="failures">
  <thead><tr><th>Task</th><th>Job</th><th>Status</th><th>Exit</th><th>Error</th></tr></thead>
  <tbody></tbody>
</table>
</div>
