% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Taps and kegs</h1>
<article id="alerts" class="alerts" hidden>
  <header><strong>Alerts</strong></header>
  <ul id="alert-list"></ul>
</article>
<section id="taps" class="cards"></section>
<section id="fridges" class="cards"></section>
<details class="admin-only">
  <summary role="button" class="outline">Configure a tap</summary>
  <form id="configure">
    <div class="grid">
      <label>Tap <input name="tap" required></label>
      <label>Meter <input name="meter" required placeholder="keg1.flow0"></label>
      <label>Ticks per ml <input name="ticks_per_ml" type="number" step="any" min="0.001" value="2.724"></label>
      <label>Idle (s) <input name="idle_s" type="number" step="any" min="0.1" value="10"></label>
      <label>Valve output <input name="output" placeholder="keg1.relay0"></label>
    </div>
    <button type="submit">Save tap</button>
  </form>
</details>
<details class="admin-only" id="simulator">
  <summary role="button" class="outline">Simulated devices (hwagent --device sim://)</summary>
  <form id="sim-swipe" class="toolbar">
    <label>Reader agent <input name="agent" required value="rfid"></label>
    <label>Card (hex) <input name="token" required placeholder="a1ce000001"></label>
    <button type="submit">Swipe</button>
  </form>
  <form id="sim-pour" class="toolbar">
    <label>Tap <input name="tap" required value="tap1"></label>
    <label>ml <input name="ml" type="number" min="1" max="20000" value="300" required></label>
    <label>over (s) <input name="seconds" type="number" step="any" min="0" max="60" value="3"></label>
    <button type="submit">Pour</button>
  </form>
</details>
<article>
  <header>Recent pours</header>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>End</th><th>Tap</th><th>Who</th><th>Volume</th><th class="admin-only">Correct</th></tr></thead><tbody id="pours"></tbody></table></div>
</article>
