//! An independent, OpenID Certified authorization server for conformance tests: panva's `oidc-provider` (npm),
//! configured by `end2end/oidc-provider/server.mjs` (its README says what each mode does), run with Node.js on a
//! free loopback port. What our own demo provider cannot catch: what we misread in the specifications.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use reqwest::{StatusCode, header};

pub const CLIENT_ID: &str = "onbehalf";
pub const CLIENT_SECRET: &str = "conformance-secret";

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// OIDC Core §11: a refresh token only when `offline_access` was granted, which needs `prompt=consent`.
    Strict,
    /// A refresh token for every code grant; `offline_access` left out of the granted scope without the prompt.
    Lenient,
}

pub struct OidcProvider {
    child: Child,
    pub issuer: String,
    http: reqwest::Client,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OidcProvider {
    /// Starts it with `redirect_uris` registered for the client, and waits for it to listen.
    pub fn start(mode: Mode, redirect_uris: &[String]) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/end2end/oidc-provider");
        assert!(
            std::path::Path::new(dir).join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run `bash .ci/setup --test` (or `npm ci` in {dir})"
        );
        let mode = match mode {
            Mode::Strict => "strict",
            Mode::Lenient => "lenient",
        };
        let mut child = Command::new("node")
            .args(["server.mjs", "--port", "0", "--mode", mode])
            .args(redirect_uris.iter().flat_map(|uri| ["--redirect-uri", uri]))
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (Node.js is installed by .ci/setup)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let issuer = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("oidc-provider did not start: {line:?}"))
            .to_owned();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { child, issuer, http }
    }

    /// A free port for an app whose callback URL must be registered before it starts.
    /// A person at the provider: opens `authorize_url`, signs in as `login` and allows or denies (`decision`) on
    /// its consent form, carrying its cookies as a browser would. Returns the URL it sends the browser back to.
    pub async fn authorize(&self, authorize_url: &str, login: &str, decision: &str) -> String {
        let mut jar = BTreeMap::new();
        let interaction = self.follow(authorize_url, &mut jar).await;
        assert!(interaction.contains("/interaction/"), "{interaction}");
        let form = self.absolute(&interaction);
        let page = self.send(self.http.get(&form), &mut jar).await;
        assert_eq!(page.status(), StatusCode::OK, "the interaction form");
        let res = self
            .send(
                self.http.post(&form).form(&[("login", login), ("decision", decision)]),
                &mut jar,
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "the form's answer");
        let resume = location(&res);
        self.follow(&self.absolute(&resume), &mut jar).await
    }

    /// Whether the provider still honours `token` (RFC 7662 introspection, as the client).
    pub async fn is_active(&self, token: &str) -> bool {
        let res = self
            .http
            .post(format!("{}/token/introspection", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<serde_json::Value>().await.unwrap()["active"] == true
    }

    /// One GET that must redirect; its target.
    async fn follow(&self, url: &str, jar: &mut BTreeMap<String, String>) -> String {
        let res = self.send(self.http.get(url), jar).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{url}");
        location(&res)
    }

    async fn send(&self, request: reqwest::RequestBuilder, jar: &mut BTreeMap<String, String>) -> reqwest::Response {
        let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let res = request.header(header::COOKIE, cookies.join("; ")).send().await.unwrap();
        // Every cookie goes back on every request: the provider scopes them by path, and extra ones are ignored.
        for set in res.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                jar.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        res
    }

    fn absolute(&self, url: &str) -> String {
        match url.starts_with('/') {
            true => format!("{}{url}", self.issuer),
            false => url.to_owned(),
        }
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()[header::LOCATION].to_str().unwrap().to_owned()
}
