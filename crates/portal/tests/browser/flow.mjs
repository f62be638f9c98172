// The portal as a person uses it, in Debian's Chromium driven by playwright-core.
// Run by the e2e test `portal::a_person_signs_up_creates_an_organisation_and_watches_a_site`,
// which starts a real primary and passes where it is:
//
//   PORTAL=http://127.0.0.1:PORT OUTBOX=DATA/mail/outbox SHOTS=FOLDER node flow.mjs PHASE
//
// Phases: `signup` (register, confirm from the .eml file, sign in, create an
// organisation, read the sync key: printed as JSON on the last line), then `sites`
// (sign in again, open the organisation, print "watching", and wait, without reloading,
// for the site the test enrols meanwhile to appear "in sync"), `reset` (a forgotten
// password, then "sign out everywhere else"), `viewer` (an invited viewer joins and
// may not rotate the key) and `admin` (the owner switches organisation, sets the time
// zone, creates a store and assigns it to the site, reads the audit log, and sees the
// organisation in Russian). Each page visited is saved
// as a screenshot in SHOTS. Exits non-zero, saying why, when a step fails.

import { chromium } from "playwright-core";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const { PORTAL, OUTBOX, SHOTS } = process.env;
const EMAIL = "owner@example.org";
const PASSWORD = "violet umbrella harbour seventeen";
const NEW_PASSWORD = "amber lantern quietly drifting";
const VIEWER = "viewer@example.org";
const phase = process.argv[2];

// The link to `path` in the newest mail to `to`.
function linkFromMail(to, path) {
  const mails = readdirSync(OUTBOX)
    .map((f) => readFileSync(join(OUTBOX, f), "utf8"))
    .filter((m) => m.includes(`To: ${to}`));
  for (const mail of mails.reverse()) {
    const found = mail.match(new RegExp(`https?://[^\\s]+/${path}/[0-9a-f]+`));
    if (found) return found[0];
  }
  throw new Error(`no mail to ${to} with a /${path}/ link in ${OUTBOX}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page, password = PASSWORD) {
  await page.goto(`${PORTAL}/login`);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/orgs$/);
}

async function signup(page) {
  await page.goto(`${PORTAL}/register`);
  await shot(page, "01-register");
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill("password1234");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("alert").waitFor();
  const refusal = await page.getByRole("alert").textContent();
  if (!refusal.includes("too easy to guess")) throw new Error(`a weak password was not refused: ${refusal}`);
  await shot(page, "02-register-weak-password");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Check your mail" }).waitFor();
  await shot(page, "03-check-your-mail");

  await page.goto(linkFromMail(EMAIL, "confirm"));
  await shot(page, "04-confirm");
  await page.getByRole("button", { name: "Confirm address" }).click();
  await page.getByText("Your address is confirmed").waitFor();
  await shot(page, "05-confirmed");

  await page.goto(`${PORTAL}/login`);
  await shot(page, "06-sign-in");
  await signIn(page);
  await shot(page, "07-no-organisations");
  await page.getByLabel("Organisation name").fill("Acme Pharmacies");
  await page.getByRole("button", { name: "Create organisation" }).click();
  await page.waitForURL(/\/orgs\/\d+$/);
  const key = (await page.getByTestId("sync-key").textContent()).trim();
  if (!/^ss1-/.test(key)) throw new Error(`no sync key on the page: ${key}`);
  await shot(page, "08-organisation-sync-key");
  console.log(JSON.stringify({ syncKey: key, org: page.url() }));
}

async function sites(page, org) {
  await signIn(page);
  await page.goto(org);
  await shot(page, "09-organisation-no-site-yet");
  // The test enrols a real satellite now; the open page shows it, in sync, by itself.
  console.log("watching");
  const row = page.getByTestId("site-row");
  await row.first().filter({ hasText: "in sync" }).waitFor({ timeout: 30000 });
  const id = await row.first().getAttribute("data-site-id");
  await shot(page, "10-organisation-with-a-site");
  await row.first().getByRole("link").click();
  await page.getByRole("heading", { name: /Site \d+/ }).waitFor();
  await shot(page, "11-site");
  await page.goto(`${org}/members`);
  await page.getByLabel("Email").fill("colleague@example.org");
  await page.getByRole("button", { name: "Send invitation" }).click();
  await page.getByText("The invitation was sent").waitFor();
  await shot(page, "12-members");
  await page.goto(`${PORTAL}/account`);
  await shot(page, "13-account");
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(/\/login$/);
  // Signed out: the organisation's page sends back to sign in.
  await page.goto(org);
  await page.waitForURL(/\/login$/);
  console.log(JSON.stringify({ siteId: id }));
}

// A forgotten password reset by the mailed link; then "sign out everywhere else".
async function reset(page) {
  await page.goto(`${PORTAL}/reset`);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByRole("button", { name: "Send reset link" }).click();
  await page.getByRole("heading", { name: "Check your mail" }).waitFor();
  await page.goto(linkFromMail(EMAIL, "reset"));
  await page.getByLabel("New password").fill("password1234");
  await page.getByRole("button", { name: "Set password" }).click();
  await page.getByRole("alert").waitFor();
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Set password" }).click();
  await page.getByText("Your new password is set").waitFor();
  await shot(page, "14-password-reset");
  await signIn(page, NEW_PASSWORD);
  await page.goto(`${PORTAL}/account`);
  await page.getByRole("button", { name: "Sign out everywhere else" }).click();
  await page.getByText("Every other session was ended").waitFor();
  await shot(page, "15-signed-out-elsewhere");
  console.log(JSON.stringify({ reset: true }));
}

// A viewer invited by the owner joins by the mailed link: the organisation's page shows
// no key and no rotate button, and a rotation posted anyway is refused.
async function viewer(page, org) {
  await signIn(page, NEW_PASSWORD);
  await page.goto(`${org}/members`);
  await page.getByLabel("Email").fill(VIEWER);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await page.getByText("The invitation was sent").waitFor();
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.goto(linkFromMail(VIEWER, "invite"));
  await shot(page, "16-invitation");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account and join" }).click();
  await page.waitForURL(new RegExp(`${org}$`));
  if ((await page.getByTestId("sync-key").count()) !== 0) throw new Error("a viewer sees the sync key");
  if ((await page.getByText("Rotate sync key").count()) !== 0) throw new Error("a viewer sees the rotate button");
  await shot(page, "17-viewer");
  const refused = await page.request.post(`${org}/rotate-key`, { headers: { Origin: PORTAL } });
  if (refused.status() !== 403) throw new Error(`a viewer's rotation answered ${refused.status()}`);
  console.log(JSON.stringify({ viewerRefused: refused.status() }));
}

// The owner's administration: the switcher, the time zone, a store assigned to the
// site, the audit log, and the organisation's page in Russian.
async function admin(page, org, site) {
  await signIn(page, NEW_PASSWORD);
  await page.goto(org);
  await page.locator("details.switcher summary").click();
  await page.locator("details.switcher").getByRole("link", { name: "Acme Pharmacies" }).waitFor();
  await shot(page, "18-switcher");
  await page.getByLabel("Time zone").fill("Europe/Moscow");
  await page.getByRole("button", { name: "Set time zone" }).click();
  await page.getByText("The time zone is set").waitFor();
  await page.getByRole("link", { name: "Stores" }).first().click();
  await page.getByLabel("Store name").fill("North");
  await page.getByRole("button", { name: "Create store" }).click();
  await page.getByRole("cell", { name: "North" }).waitFor();
  await shot(page, "19-stores");
  await page.goto(`${org}/sites/${site}`);
  await page.getByLabel("North").check();
  await page.getByRole("button", { name: "Save stores" }).click();
  await page.getByText("The site's stores were saved").waitFor();
  const contact = await page.getByRole("row", { name: /Last contact/ }).textContent();
  if (!contact.includes("+03:00")) throw new Error(`the last contact is not in Moscow time: ${contact}`);
  await shot(page, "20-site-assigned");
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByText("assigned stores to a site").first().waitFor();
  await shot(page, "21-audit-log");
  const russian = await (await page.context().browser().newContext({ locale: "ru-RU" })).newPage();
  await russian.context().addCookies(await page.context().cookies());
  await russian.goto(org);
  await russian.getByRole("heading", { name: "Ключ синхронизации" }).waitFor();
  await shot(russian, "22-organisation-in-russian");
  const phone = await (
    await page.context().browser().newContext({ viewport: { width: 390, height: 844 }, isMobile: true })
  ).newPage();
  await phone.context().addCookies(await page.context().cookies());
  await phone.goto(org);
  await phone.getByTestId("site-row").first().waitFor();
  const wide = await phone.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 390) throw new Error(`the organisation's page is ${wide} px wide on a 390 px phone`);
  await shot(phone, "23-organisation-on-a-phone");
  console.log(JSON.stringify({ assigned: true }));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking"],
});
try {
  const page = await (await browser.newContext({ locale: "en-GB" })).newPage();
  page.setDefaultTimeout(15000);
  if (phase === "signup") await signup(page);
  else if (phase === "sites") await sites(page, process.argv[3]);
  else if (phase === "reset") await reset(page);
  else if (phase === "viewer") await viewer(page, process.argv[3]);
  else if (phase === "admin") await admin(page, process.argv[3], process.argv[4]);
  else throw new Error(`no phase ${phase}`);
} catch (error) {
  console.error(`browser flow ${phase} failed: ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
