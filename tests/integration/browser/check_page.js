// Opens loopspy's outputs in headless Chromium (puppeteer-core) and reports, as JSON on stdout,
// what a user would see: script errors, the flame graph's geometry at two window widths, what a
// bad search says, and whether speedscope loaded a profile.
//
// usage: node check_page.js BASE_URL   (BASE_URL serves profile.svg, s.json and speedscope/)
const puppeteer = require('puppeteer-core');

(async () => {
  const base = process.argv[2];
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const out = { errors: [] };
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => out.errors.push('pageerror: ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') out.errors.push('console: ' + m.text()); });
    await page.setViewport({ width: 1600, height: 900 });
    await page.goto(base + '/profile.svg', { waitUntil: 'load' });
    const geometry = () => page.evaluate(() => {
      const svg = document.documentElement;
      const root = document.querySelector('#frames g rect');
      const title = document.getElementById('title');
      return {
        width: parseFloat(svg.getAttribute('width')),
        root_width: root ? parseFloat(root.getAttribute('width')) : null,
        search_x: parseFloat(document.getElementById('search').getAttribute('x')),
        title: title.lastChild.textContent,
        title_tooltip: title.querySelector('title') ? title.querySelector('title').textContent : null,
        legend: Array.from(document.querySelectorAll('#legend text')).map((t) => t.textContent),
      };
    });
    out.wide = await geometry();
    await page.setViewport({ width: 900, height: 900 });
    await new Promise((r) => setTimeout(r, 300));
    out.narrow = await geometry();
    // A search for a regular expression that does not parse.
    page.once('dialog', (d) => d.accept('(unclosed'));
    await page.click('#search');
    await new Promise((r) => setTimeout(r, 300));
    out.bad_search = await page.evaluate(() => document.getElementById('details').textContent);
    // A good one, to see it highlight.
    page.once('dialog', (d) => d.accept('blocking_handler'));
    await page.click('#search');
    await new Promise((r) => setTimeout(r, 300));
    out.good_search = await page.evaluate(() => document.getElementById('matched').textContent);

    const ss = await browser.newPage();
    ss.on('pageerror', (e) => out.errors.push('speedscope pageerror: ' + e.message));
    await ss.goto(base + '/speedscope/index.html#profileURL=' + encodeURIComponent(base + '/s.json'), { waitUntil: 'load' });
    await ss.waitForFunction(() => document.title.includes('speedscope') && !document.title.startsWith('speedscope'),
                             { timeout: 20000 }).catch(() => {});
    out.speedscope_title = await ss.title();
    out.speedscope_text = await ss.evaluate(() => document.body.innerText.slice(0, 2000));
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stdout.write(JSON.stringify({ fatal: String(e) })); process.exit(1); });
