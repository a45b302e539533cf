% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Jobs</h1>
<details class="admin-only" id="submit-box">
  <summary role="button" class="outline">Submit a job</summary>
  <form id="submit">
    <div class="grid">
      <label>Name <input name="name" required maxlength="200"></label>
      <label>Frames <input name="frames" placeholder="1-100"></label>
      <label>Chunk <input name="chunk" type="number" min="1" value="1"></label>
      <label>Priority <input name="priority" type="number" min="0" max="100" value="50"></label>
    </div>
    <label>Command (argv, one argument per line; {frame} {start} {end} are replaced)
      <textarea name="argv" rows="3" required placeholder="echo&#10;frame {frame}"></textarea></label>
    <label>Tags <input name="tags" placeholder="gpu, linux"></label>
    <button type="submit">Submit</button>
  </form>
</details>
<form id="status-filter" class="toolbar">
  <select name="status" id="status" aria-label="Status">
    <option value="">all statuses</option>
% for s in ('queued', 'active', 'paused', 'completed', 'failed', 'canceled'):
    <option value="{{s}}">{{s}}</option>
% end
  </select>
  <span class="admin-only bulk">
    <span id="checked-count">0 checked</span>
    <button type="button" class="secondary" data-bulk="pause">Pause</button>
    <button type="button" class="secondary" data-bulk="resume">Resume</button>
    <button type="button" class="secondary" data-bulk="requeue">Requeue</button>
    <button type="button" class="secondary contrast" data-bulk="cancel">Cancel</button>
    <button type="button" class="secondary contrast" data-bulk="delete" title="finished jobs only: their tasks and logs go too">Delete</button>
  </span>
</form>
<div class="overflow-auto">
<table class="striped" id="jobs">
  <thead><tr><th class="admin-only"><input type="checkbox" id="check-all" aria-label="check all"></th>
  <th>ID</th><th>Name</th><th>Status</th><th>Progress</th><th>Priority</th><th>Tasks</th><th>Created</th><th class="admin-only">Actions</th></tr></thead>
  <tbody></tbody>
</table>
</div>
<nav class="pager"><button type="button" class="secondary" id="prev">← Newer</button><span id="page-info"></span><button type="button" class="secondary" id="next">Older →</button></nav>
