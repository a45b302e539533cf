% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Clients</h1>
<form id="filter" role="search">
  <input type="search" name="q" id="select" placeholder="selector: all, online, role=worker, tag=gpu, render-0*" aria-label="Selector">
  <button type="submit">Filter</button>
</form>
<div class="toolbar admin-only">
  <span id="checked-count">0 checked</span>
  <button type="button" class="secondary" id="enable-checked">Enable</button>
  <button type="button" class="secondary" id="disable-checked">Disable</button>
  <button type="button" class="secondary" id="stop-checked">Stop when idle</button>
  <button type="button" class="secondary" id="restart-checked">Restart when idle</button>
  <label class="inline">Offline for more than <input type="number" id="prune-days" min="0" step="any" value="7" aria-label="days offline"> days</label>
  <button type="button" class="secondary contrast" id="prune">Forget them</button>
</div>
<div class="overflow-auto">
<table class="striped sortable" id="clients">
  <thead><tr>
    <th class="admin-only"><input type="checkbox" id="check-all" aria-label="check all"></th>
    <th data-key="name">Name</th><th data-key="role">Role</th><th data-key="host">Host</th>
    <th data-key="status">Status</th><th data-key="enabled">Enabled</th>
    <th data-key="last_seen">Last seen</th><th data-key="running">Running</th><th data-key="tags">Tags</th><th data-key="schedule">Schedule</th>
    <th class="admin-only">Actions</th>
  </tr></thead>
  <tbody></tbody>
</table>
</div>
<p id="summary"></p>
