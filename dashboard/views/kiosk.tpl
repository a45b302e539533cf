% rebase('layout', title=title, session=session, page=page, initial=initial)
<section id="kiosk" class="kiosk"></section>
