% rebase('layout', title='Log in', session=None)
<article class="login">
  <h1>Log in</h1>
% if error:
  <p class="error" role="alert">{{error}}</p>
% end
  <form method="post" action="/login">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <input type="hidden" name="next" value="{{next}}">
    <label>Username <input name="username" autocomplete="username" required value="{{username}}" autofocus></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <button type="submit">Log in</button>
  </form>
  <p><small>Accounts are the master's users. The first admin: <code>python -m dashboard create-admin NAME</code>.</small></p>
</article>
