% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Admin</h1>
<article>
  <header>Agent keys</header>
  <form id="key-create" class="toolbar">
    <select name="role" aria-label="Role">
% for role in ('worker', 'hardware', 'auth', 'node', 'api'):
      <option>{{role}}</option>
% end
    </select>
    <input name="name" placeholder="client name (agents: the key works for it only)" aria-label="Key name">
    <input name="label" placeholder="label (free text)" aria-label="Key label">
    <select name="scope" aria-label="Scope of an api key">
      <option value="admin">api scope: admin</option>
      <option value="read">api scope: read-only</option>
    </select>
    <button type="submit">Create key</button>
  </form>
  <div id="new-key" class="secret" hidden><p>Copy this key now; it is not shown again:</p><pre id="new-key-text"></pre></div>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>ID</th><th>Role</th><th>Name</th><th>Scope</th><th>Label</th><th>Created</th><th>State</th><th></th></tr></thead><tbody id="keys"></tbody></table></div>
</article>
<article>
  <header>Users</header>
  <form id="user-create">
    <div class="grid">
      <label>Username <input name="username" required maxlength="64"></label>
      <label>Display name <input name="display_name" maxlength="200"></label>
      <label>Password <input name="password" type="password" autocomplete="new-password"></label>
    </div>
    <label><input type="checkbox" name="admin"> admin (may change things in the dashboard)</label>
    <button type="submit">Create user</button>
  </form>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>User</th><th>Name</th><th>Admin</th><th>Password</th><th>Created</th></tr></thead><tbody id="users"></tbody></table></div>
</article>
