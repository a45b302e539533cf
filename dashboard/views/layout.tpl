<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
% if session is not None:
<meta name="csrf-token" content="{{session.csrf}}">
% end
<title>{{title}} · farmhand</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/vendor/pico/pico.min.css">
<link rel="stylesheet" href="/static/vendor/uplot/uPlot.min.css">
<link rel="stylesheet" href="/static/app.css">
</head>
<body data-page="{{get('page', '')}}" data-admin="{{'1' if session is not None and session.admin else ''}}">
<header class="container-fluid topbar">
  <nav>
    <ul><li><a href="/" class="brand"><strong>farmhand</strong></a></li></ul>
% if session is not None and session.logged_in:
    <ul class="links">
      <li><a href="/">Overview</a></li>
      <li><a href="/clients">Clients</a></li>
      <li><a href="/jobs">Jobs</a></li>
      <li><a href="/taps">Taps</a></li>
      <li><a href="/people">Pours</a></li>
      <li><a href="/readings">Readings</a></li>
% if session.admin:
      <li><a href="/admin">Admin</a></li>
      <li><a href="/audit">Audit</a></li>
      <li><a href="/webhooks">Webhooks</a></li>
% end
      <li>
        <form method="post" action="/logout" class="logout">
          <input type="hidden" name="csrf" value="{{session.csrf}}">
          <button type="submit" class="outline secondary" title="log out">{{session.username}}{{' (admin)' if session.admin else ''}} · log out</button>
        </form>
      </li>
    </ul>
% end
  </nav>
</header>
<div id="banner" class="banner" role="status" hidden></div>
<div id="toast" class="toast" role="alert" hidden></div>
<main class="container-fluid">
{{!base}}
</main>
% if get('page'):
<script type="application/json" id="initial-data">{{!initial}}</script>
<script type="module" src="/static/js/{{page}}.js"></script>
% end
</body>
</html>
