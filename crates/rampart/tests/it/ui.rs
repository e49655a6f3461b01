//! The web pages over real HTTP (no browser): the page CSP and caching, hashed assets, sign-in
//! with the cookie and every `rd` spelling that must not leave the origin, the step-up with a
//! TOTP code or the e-mailed one, an expired password changed on the way in, CSRF on the pages'
//! forms, and refusals shown as messages. The journeys in a real Chromium are in `browser`.

use crate::mfa::{PW, code_at, enable_totp, no_delays};
use rampart_domain::Clock as _;
use rampart_domain::clock::FixedClock;
use rampart_testkit::smtp::SmtpSink;
use rampart_testkit::{TestApp, TestDb};
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A form post as a browser on this origin sends it.
pub(crate) fn form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    app.client.post(app.url(path)).header("origin", format!("http://{}", app.addr)).form(fields)
}

/// The session cookie (`name=value`) a response sets.
pub(crate) fn session_cookie(res: &reqwest::Response) -> String {
    let set = res.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-rampart_session="), "{set}");
    for attr in ["Secure", "HttpOnly", "SameSite=", "Path=/"] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    set.split(';').next().unwrap().to_string()
}

/// The value of the first input named `name` on a page.
pub(crate) fn field(page: &str, name: &str) -> String {
    let prefix = format!("name=\"{name}\" value=\"");
    let at = page.find(&prefix).unwrap_or_else(|| panic!("no field {name}: {page}"));
    page[at + prefix.len()..].split('"').next().unwrap().to_string()
}

pub(crate) fn location(res: &reqwest::Response) -> &str {
    res.headers().get(LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf_of(page: &str) -> String {
    field(page, "csrf")
}

pub(crate) async fn sign_in(app: &TestApp, email: &str, rd: &str) -> reqwest::Response {
    form(app, "/ui/login", &[("email", email), ("password", PW), ("rd", rd)]).send().await.unwrap()
}

#[tokio::test]
async fn pages_carry_the_strict_csp_and_no_store_and_assets_are_immutable() {
    let app = TestApp::spawn().await;
    for path in ["/ui/login", "/ui/register", "/ui/forgot", "/ui/reset?token=x", "/ui/verify-email?token=x"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()[CONTENT_SECURITY_POLICY], CSP, "{path}");
        assert!(res.headers().get("content-security-policy-report-only").is_none(), "{path}: one policy only");
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store", "{path}");
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("<style") && !body.contains(" style="), "{path}: no inline style");
        assert!(!body.contains("<script>") && !body.contains(" on"), "{path}: no inline script or handlers");
        assert!(body.contains("<label for=\"email\"") || !body.contains("id=\"email\""), "{path}: labelled inputs");
    }
    // The JSON API keeps its own policy.
    let res = app.get("/healthz").await;
    assert!(res.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().contains("report-uri"));

    let page = app.get("/ui/login").await.text().await.unwrap();
    let mut assets = Vec::new();
    for part in page.split("/ui/assets/").skip(1) {
        assets.push(part.split('"').next().unwrap().to_string());
    }
    assert!(assets.len() >= 4, "stylesheet, htmx, script, icon: {assets:?}");
    let mut weight = page.len();
    for name in &assets {
        let res = app.get(&format!("/ui/assets/{name}")).await;
        assert_eq!(res.status(), 200, "{name}");
        assert_eq!(res.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable", "{name}");
        let hashed = name.split('.').nth(1).unwrap();
        assert_eq!(hashed.len(), 12, "{name}: a content hash in the name");
        weight += res.bytes().await.unwrap().len();
    }
    assert!(weight < 100 * 1024, "sign-in page weighs {weight} bytes on first load");
    assert_eq!(app.get("/ui/assets/style.css").await.status(), 404, "only hashed names are served");
    assert_eq!(app.get("/favicon.ico").await.status(), 200);
}

#[tokio::test]
async fn sign_in_returns_only_to_this_origin_or_an_allowed_host() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        no_delays(c);
        c.gateway.allowed_redirect_hosts = vec!["app.example.com".into()];
    })
    .await;
    app.create_user("rd@example.com", PW, &[]).await;

    let res = sign_in(&app, "rd@example.com", "").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ui/account");
    let cookie = session_cookie(&res);
    let res = app.client.get(app.url("/ui/account")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    assert!(res.text().await.unwrap().contains("rd@example.com"));

    let res = sign_in(&app, "rd@example.com", "/ui/account/keys?x=1").await;
    assert_eq!(location(&res), "/ui/account/keys?x=1", "a same-origin path is kept");

    for bad in [
        "//evil.example",
        "https:evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "javascript:alert(document.domain)",
        "JAVASCRIPT:alert(1)",
        "http://evil.example",
        "HTTPS://EVIL.EXAMPLE/",
        "https://app.example.com@evil.example/",
        "/\t/evil.example",
        "/\n/evil.example",
        "java\nscript:alert(1)",
    ] {
        let res = sign_in(&app, "rd@example.com", bad).await;
        assert_eq!(res.status(), 303, "{bad:?}");
        assert_eq!(location(&res), "/ui/account", "{bad:?} must not be followed");
        let res = app.get(&format!("/ui/continue?rd={}", urlencode(bad))).await;
        assert_eq!(location(&res), "/ui/account", "/ui/continue refuses {bad:?} too");
    }

    // An allowed host: through the same-origin hop (form-action 'self' blocks a cross-origin
    // redirect of the post itself).
    let res = sign_in(&app, "rd@example.com", "https://App.Example.com/orders?id=7").await;
    let hop = location(&res).to_string();
    assert_eq!(hop, "/ui/continue?rd=https%3A%2F%2Fapp.example.com%2Forders%3Fid%3D7");
    let res = app.get(&hop).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "https://app.example.com/orders?id=7");

    // Signed in already: the sign-in page goes straight on.
    let res =
        app.client.get(app.url("/ui/login?rd=/ui/account/sessions")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(location(&res), "/ui/account/sessions");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn refusals_read_as_messages_and_forms_need_this_origin_and_the_csrf_token() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    app.create_user("msg@example.com", PW, &[]).await;

    let res = form(&app, "/ui/login", &[("email", "msg@example.com"), ("password", "not the password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get(SET_COOKIE).is_none());
    let body = res.text().await.unwrap();
    assert!(body.contains("The e-mail address or password is not right."), "{body}");
    assert!(body.contains("value=\"msg@example.com\""), "the address is kept");

    // A weak password at registration: the estimator's hint is on the page.
    let res = form(&app, "/ui/register", &[("email", "new@example.com"), ("password", "qwertyuiop123456")])
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("Please check what you entered."), "{body}");
    assert!(body.contains("This password is too easy to guess. ("), "the estimator's hint follows: {body}");
    assert!(body.contains("value=\"new@example.com\""), "the address is kept");

    // A forged cross-site post (no same-origin sign) is refused before anything happens.
    let res = app
        .client
        .post(app.url("/ui/login"))
        .header("origin", "https://evil.example")
        .form(&[("email", "msg@example.com"), ("password", PW)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get(SET_COOKIE).is_none());

    // Signed-in forms need the session's CSRF token.
    let cookie = session_cookie(&sign_in(&app, "msg@example.com", "").await);
    let page = app.client.get(app.url("/ui/account/sessions")).header("cookie", &cookie).send().await.unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let res = form(&app, "/ui/logout", &[("csrf", "wrong")]).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = app.client.get(app.url("/ui/account")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 200, "still signed in");
    let res = form(&app, "/ui/logout", &[("csrf", &csrf)]).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let res = app.client.get(app.url("/ui/account")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed out: back to the sign-in page");
    assert_eq!(location(&res), "/ui/login?rd=%2Fui%2Faccount");

    // Throttled: the page says when to try again.
    let mut last = String::new();
    for _ in 0..12 {
        let res =
            form(&app, "/ui/login", &[("email", "msg@example.com"), ("password", "wrong again")]).send().await.unwrap();
        last = res.text().await.unwrap();
        if last.contains("Too many attempts") {
            break;
        }
    }
    assert!(last.contains("Too many attempts. Try again in"), "{last}");
}

#[tokio::test]
async fn the_step_up_asks_for_the_code_and_a_right_one_opens_the_session() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), no_delays).await;
    let user = app.create_and_login("two@example.com", PW, &[]).await;
    let (secret, backup) = enable_totp(&app, &user.access_token, clock.now()).await;
    clock.advance(time::Duration::seconds(30)); // the enabling code's step is spent

    let res = sign_in(&app, "two@example.com", "/ui/account/security").await;
    assert_eq!(res.status(), 200, "no session before the second step");
    assert!(res.headers().get(SET_COOKIE).is_none());
    let page = res.text().await.unwrap();
    assert!(page.contains("Authenticator code"), "{page}");
    let (token, methods) = (field(&page, "mfa_token"), field(&page, "methods"));
    assert_eq!(methods, "totp,backup_code");

    let wrong = [("mfa_token", token.as_str()), ("methods", &methods), ("method", "totp"), ("code", "000000")];
    let res = form(&app, "/ui/login/step-up", &wrong).send().await.unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("That code is not right"), "{body}");

    let code = code_at(&secret, clock.now());
    let right = [
        ("mfa_token", token.as_str()),
        ("methods", &methods),
        ("method", "totp"),
        ("code", &code),
        ("rd", "/ui/account/security"),
    ];
    let res = form(&app, "/ui/login/step-up", &right).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ui/account/security");
    let cookie = session_cookie(&res);
    let page = app.client.get(app.url("/ui/account/security")).header("cookie", &cookie).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Unused backup codes: 10"));

    // A backup code works once.
    let page = sign_in(&app, "two@example.com", "").await.text().await.unwrap();
    let token = field(&page, "mfa_token");
    let res = form(
        &app,
        "/ui/login/step-up",
        &[("mfa_token", &token), ("methods", &methods), ("method", "backup_code"), ("code", &backup[0])],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn the_e_mailed_code_step_and_an_expired_password_on_the_pages() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_clock(TestDb::fresh().await, clock.clone(), |c| {
        no_delays(c);
        c.mfa.email_fallback = true;
        c.passwords.max_age_days = 90;
        sink.configure(c);
    })
    .await;
    let user = app.create_and_login("mail@example.com", PW, &[]).await;
    let (_, backup) = enable_totp(&app, &user.access_token, clock.now()).await;

    // The step-up offers the e-mailed code; asking for it shows its form.
    let page = sign_in(&app, "mail@example.com", "").await.text().await.unwrap();
    assert!(page.contains("E-mail me a code instead"), "{page}");
    let (token, methods) = (field(&page, "mfa_token"), field(&page, "methods"));
    assert_eq!(methods, "totp,backup_code,email");
    let res = form(&app, "/ui/login/email-code", &[("mfa_token", &token), ("methods", &methods)]).send().await.unwrap();
    let page = res.text().await.unwrap();
    assert!(page.contains("We sent a sign-in code"), "{page}");
    assert!(page.contains("Code from the e-mail"), "{page}");
    app.mail_idle().await;
    let mail = sink.wait_for_subject("mail@example.com", "Your sign-in code", Duration::from_secs(10)).await;
    let code = mail.text.split("Your sign-in code is ").nth(1).map(|r| r[..6].to_string()).unwrap();
    let res = form(
        &app,
        "/ui/login/step-up",
        &[("mfa_token", &token), ("methods", &methods), ("method", "email"), ("code", &code)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ui/account");

    // An expired password: after the second step the page asks for a new one.
    clock.advance(time::Duration::days(91));
    let page = sign_in(&app, "mail@example.com", "").await.text().await.unwrap();
    let token = field(&page, "mfa_token");
    let answer =
        [("mfa_token", token.as_str()), ("methods", &methods), ("method", "backup_code"), ("code", &backup[0])];
    let res = form(&app, "/ui/login/step-up", &answer).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get(SET_COOKIE).is_none(), "no session with an expired password");
    let page = res.text().await.unwrap();
    assert!(page.contains("Your password has expired"), "{page}");
    let change_token = field(&page, "token");
    let new = "a fresh and unguessable passphrase";
    let res = form(&app, "/ui/reset", &[("token", &change_token), ("new_password", new), ("confirm_password", new)])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/ui/login?done=password_reset");
    let res = form(&app, "/ui/login", &[("email", "mail@example.com"), ("password", new)]).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("Authenticator code"), "the new password works");
}

/// The security page shows the e-mail notices a user may turn off, and saving the form
/// changes them (with the session's CSRF token, and never the critical ones).
#[tokio::test]
async fn the_security_page_turns_the_optional_notices_off_and_on() {
    let app = TestApp::spawn_with(TestDb::fresh().await, no_delays).await;
    let user = app.create_and_login("notices@example.com", PW, &[]).await;
    let cookie = session_cookie(&sign_in(&app, "notices@example.com", "").await);
    let page = |cookie: String| {
        let app = &app;
        async move {
            let res = app.client.get(app.url("/ui/account/security")).header("cookie", cookie).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.text().await.unwrap()
        }
    };
    let before = page(cookie.clone()).await;
    assert!(before.contains("E-mail notices") && before.contains("Always sent"), "{before}");
    assert!(before.contains("name=\"new_sign_in\" value=\"1\" checked"), "on by default");
    let csrf = csrf_of(&before);

    // Without the token: refused, nothing changes.
    let res = form(&app, "/ui/account/notifications", &[("csrf", "wrong"), ("security_changes", "1")])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Unticking "new sign-in" turns it off; the other stays on.
    let res = form(&app, "/ui/account/notifications", &[("csrf", csrf.as_str()), ("security_changes", "1")])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/ui/account/security?done=notifications_saved"));
    let (_, prefs) = app.get_bearer("/v1/me/notifications", &user.access_token).await;
    assert_eq!((prefs["new_sign_in"].clone(), prefs["security_changes"].clone()), (json!(false), json!(true)));
    let after = page(cookie).await;
    assert!(after.contains("name=\"new_sign_in\" value=\"1\">"), "unticked now");
    assert!(after.contains("name=\"security_changes\" value=\"1\" checked"));
}

/// The account page's "Delete my account": it says what happens (and the grace), needs the
/// password (a wrong one changes nothing), then signs the person out everywhere, disables the
/// account and names the day it will be erased.
#[tokio::test]
async fn a_person_deletes_their_account_from_the_account_page() {
    let app = TestApp::spawn_with(TestDb::fresh().await, |c| {
        no_delays(c);
        c.accounts.erasure_grace_days = 14;
    })
    .await;
    let user = app.create_user("leaving@example.com", PW, &[]).await;
    let other_device = app.login("leaving@example.com", PW).await.access_token;
    let cookie = session_cookie(&sign_in(&app, "leaving@example.com", "").await);
    let get = |path: &'static str| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            let res = app.client.get(app.url(path)).header("cookie", cookie).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            res.text().await.unwrap()
        }
    };
    let account = get("/ui/account").await;
    assert!(account.contains("href=\"/ui/account/delete\""), "{account}");
    let page = get("/ui/account/delete").await;
    assert!(page.contains("The grace period is 14 days."), "{page}");
    let csrf = csrf_of(&page);

    let res = form(&app, "/ui/account/delete", &[("csrf", csrf.as_str()), ("password", "not it")])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("class=\"notice"), "the refusal is shown");
    assert!(!app.state.store.get_user(user.id).await.unwrap().unwrap().disabled, "a wrong password changes nothing");

    let res = form(&app, "/ui/account/delete", &[("csrf", csrf.as_str()), ("password", PW)])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cleared = res.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(cleared.contains("Max-Age=0"), "the session cookie is cleared: {cleared}");
    let done = res.text().await.unwrap();
    assert!(done.contains("scheduled for erasure") && done.contains("will be erased on"), "{done}");
    let due = app.state.store.erasure_due(user.id).await.unwrap().expect("scheduled");
    assert_eq!((due - time::OffsetDateTime::now_utc()).whole_days(), 13, "14 days, less the seconds the test took");
    assert!(app.state.store.get_user(user.id).await.unwrap().unwrap().disabled);
    assert_eq!(app.me(&other_device).await.0, 401, "signed out on every device");
    let res = app.client.get(app.url("/ui/account")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 303, "the old cookie opens nothing");
}
