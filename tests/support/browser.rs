//! What a browser does against onbehalf and the demo provider, over HTTP: call a server function as the hydrated
//! page does, sign up, start a link, press Allow or Deny on the demo's consent page, follow the callback. The tests
//! (through `TestApp` and `oauth`) and the benches (`benches/common`) drive the app through this one copy, so it
//! uses nothing else of the test support.

use reqwest::{RequestBuilder, Response, StatusCode, header};

/// The session cookie's name on plain HTTP (on HTTPS it is `__Host-onbehalf_session`).
pub const SESSION_COOKIE: &str = "onbehalf_session";
pub const PASSWORD: &str = "correct horse battery";

/// One app as a browser reaches it. Cookies are the session cookie's value, sent as `onbehalf_session=<value>`.
#[derive(Clone, Copy)]
pub struct Browser<'a> {
    /// Follows no redirects: the tests read each `Location`.
    pub client: &'a reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: &'a str,
    /// The origin the app's same-origin check accepts (its public URL's).
    pub origin: &'a str,
    /// The demo provider's issuer, which serves the consent page.
    pub demo: &'a str,
}

impl<'a> Browser<'a> {
    /// An app at `base` (`http://127.0.0.1:<port>`) whose public origin is `origin`, with its demo provider.
    pub fn new(
        client: &'a reqwest::Client,
        base: &'a str,
        origin: &'a str,
        demo: &'a onbehalf::demo::DemoProvider,
    ) -> Self {
        Browser {
            client,
            base,
            origin,
            demo: demo.issuer_str(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn with_session(request: RequestBuilder, cookie: Option<&str>) -> RequestBuilder {
        match cookie {
            Some(cookie) => request.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}")),
            None => request,
        }
    }

    /// Calls a server function the way the hydrated page does (fetch, JSON answer).
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)], cookie: Option<&str>) -> Response {
        let request = self
            .client
            .post(self.url(&format!("/api/{endpoint}")))
            .header(header::ORIGIN, self.origin)
            .header(header::ACCEPT, "application/json")
            .form(form);
        Self::with_session(request, cookie).send().await.expect("request sent")
    }

    /// The answer to signing up `email` with [`PASSWORD`].
    pub async fn sign_up_response(&self, email: &str) -> Response {
        let form = [
            ("email", email),
            ("display_name", ""),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ];
        self.call("sign_up", &form, None).await
    }

    /// Signs up `email` with [`PASSWORD`]; the session cookie's value.
    pub async fn sign_up(&self, email: &str) -> String {
        let res = self.sign_up_response(email).await;
        assert_eq!(res.status(), StatusCode::OK, "sign-up of {email} failed");
        session_cookie(&res).expect("sign-up sets the session cookie").value
    }

    /// `POST /oauth/{provider}/start` as the signed-in browser does.
    pub async fn start(&self, cookie: &str, provider: &str, form: &[(&str, &str)]) -> Response {
        let request = self
            .client
            .post(self.url(&format!("/oauth/{provider}/start")))
            .header(header::ORIGIN, self.origin)
            .form(form);
        Self::with_session(request, Some(cookie)).send().await.unwrap()
    }

    /// The demo's consent page: open the authorize URL, choose `identity`, press Allow or Deny (`decision`);
    /// returns the callback URL it sends the browser to.
    pub async fn consent(&self, authorize_url: &str, identity: &str, decision: &str) -> String {
        let page = self.client.get(authorize_url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "consent page for {authorize_url}");
        let html = page.text().await.unwrap();
        let marker = "name=\"request_id\" value=\"";
        let at = html.find(marker).expect("the consent form carries request_id") + marker.len();
        let request_id = &html[at..at + html[at..].find('"').unwrap()];
        let res = self
            .client
            .post(format!("{}/v2/oauth2/authorize/decision", self.demo))
            .form(&[
                ("request_id", request_id),
                ("identity", identity),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        location(&res)
    }

    /// Follows a callback URL with the session.
    pub async fn callback(&self, cookie: &str, url: &str) -> Response {
        Self::with_session(self.client.get(url), Some(cookie))
            .send()
            .await
            .unwrap()
    }
}

/// A redirect's target.
pub fn location(res: &Response) -> String {
    res.headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("a redirect, got {}", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The session cookie a response sets: its value and its attributes, lower-cased.
#[derive(Debug)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attributes: Vec<String>,
}

impl SetCookie {
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|a| a == &attribute.to_lowercase())
    }
}

pub fn session_cookie(res: &Response) -> Option<SetCookie> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|raw| {
            let mut parts = raw.split(';').map(str::trim);
            let (name, value) = parts.next()?.split_once('=')?;
            name.ends_with(SESSION_COOKIE).then(|| SetCookie {
                name: name.to_owned(),
                value: value.to_owned(),
                attributes: parts.map(str::to_lowercase).collect(),
            })
        })
}
