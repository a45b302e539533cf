% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Pours and people</h1>
<section class="grid">
  <article><header>By person</header><table><thead><tr><th>Who</th><th>Pours</th><th>Volume</th></tr></thead><tbody id="by-user"></tbody></table></article>
  <article><header>By keg</header><table><thead><tr><th>Keg</th><th>Pours</th><th>Volume</th></tr></thead><tbody id="by-keg"></tbody></table></article>
</section>
<article>
  <header>Recent pours</header>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>End</th><th>Tap</th><th>Who</th><th>Volume</th></tr></thead><tbody id="pours"></tbody></table></div>
</article>
<article>
  <header>Users and their tokens</header>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>User</th><th>Name</th><th>Admin</th><th>Tokens</th></tr></thead><tbody id="users"></tbody></table></div>
</article>
<article>
  <header>Unknown tokens seen recently</header>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>Reader</th><th>Token</th><th>Last seen</th><th class="admin-only">Assign to</th></tr></thead><tbody id="unknown"></tbody></table></div>
</article>
