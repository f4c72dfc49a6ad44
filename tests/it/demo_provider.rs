//! The demo provider over real HTTP on loopback: the consent dance, the token endpoint's strictness, injected faults,
//! the Transfer API subset and the control switches. Each test starts its own provider on port 0.

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use onbehalf::demo::{DemoConfig, DemoIdToken, DemoProvider, Flavor, IdTokenFault, TokenFault};
use openidconnect::{
    ClientId, ClientSecret, IssuerUrl, Nonce,
    core::{CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata},
};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback?provider=globus";
const AUTH_SCOPES: &str = "openid profile email urn:globus:auth:scope:auth.globus.org:view_identity_set";
const TRANSFER_SCOPE: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

struct Demo {
    provider: DemoProvider,
    base: String,
    http: reqwest::Client,
}

/// What the client got back from a completed consent dance.
struct Authorized {
    code: String,
    verifier: String,
    nonce: String,
    callback: HashMap<String, String>,
}

fn pkce_pair() -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn query_of(location: &str) -> HashMap<String, String> {
    Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

fn request_id(html: &str) -> String {
    let marker = r#"<input type="hidden" name="request_id" value=""#;
    let start = html.find(marker).expect("the consent page has a request_id") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

impl Demo {
    async fn start() -> Demo {
        Demo::start_with(DemoConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .await
    }

    async fn start_with(config: DemoConfig) -> Demo {
        let provider = DemoProvider::start(config).await.expect("demo provider starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Demo {
            base: provider.issuer_str().to_owned(),
            provider,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn authorize(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(self.url("/v2/oauth2/authorize"))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    async fn decide(&self, request_id: &str, identity: &str, decision: &str) -> reqwest::Response {
        self.http
            .post(self.url("/v2/oauth2/authorize/decision"))
            .form(&[
                ("request_id", request_id),
                ("identity", identity),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap()
    }

    /// GET authorize → consent page → Allow as identity `who` → the callback's query.
    async fn consent(&self, scope: &str, who: usize) -> Authorized {
        let (verifier, challenge) = pkce_pair();
        let nonce = format!("nonce-{}", uuid::Uuid::new_v4());
        let page = self
            .authorize(&[
                ("client_id", "onbehalf-demo"),
                ("redirect_uri", REDIRECT_URI),
                ("scope", scope),
                ("state", "state-123"),
                ("response_type", "code"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("nonce", &nonce),
                ("access_type", "offline"),
            ])
            .await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let identity = DemoProvider::identities()[who].sub;
        let decision = self.decide(&request_id(&html), identity, "allow").await;
        assert_eq!(decision.status(), StatusCode::SEE_OTHER);
        let location = decision.headers()[header::LOCATION].to_str().unwrap().to_owned();
        assert!(
            location.starts_with("http://127.0.0.1:9/oauth/callback?provider=globus&"),
            "{location}"
        );
        let callback = query_of(&location);
        Authorized {
            code: callback["code"].clone(),
            verifier,
            nonce,
            callback,
        }
    }

    async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/v2/oauth2/token"))
            .basic_auth("onbehalf-demo", Some("demo-secret"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn exchange(&self, code: &str, verifier: &str) -> reqwest::Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .await
    }

    /// A full login for `scope` as Ada: the token response.
    async fn login(&self, scope: &str) -> Value {
        let authorized = self.consent(scope, 0).await;
        let response = self.exchange(&authorized.code, &authorized.verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .basic_auth("onbehalf-demo", Some("demo-secret"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn introspect(&self, token: &str) -> Value {
        let response = self.post_form("/v2/oauth2/token/introspect", &[("token", token)]).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn transfer_get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Starts a transfer from `ids[0]` to `ids[1]`: its task id.
    async fn start_task(&self, token: &str, ids: &[String]) -> String {
        let (_, id) = self.transfer_get(token, "/v0.10/submission_id").await;
        let document = transfer_document(&ids[0], &ids[1], id["value"].as_str().unwrap());
        let (status, result) = self.submit(token, &document).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{result}");
        result["task_id"].as_str().unwrap().to_owned()
    }

    async fn cancel(&self, token: &str, task_id: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(&format!("/v0.10/task/{task_id}/cancel")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn submit(&self, token: &str, document: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/v0.10/transfer"))
            .bearer_auth(token)
            .json(document)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn jwks(&self) -> CoreJsonWebKeySet {
        let body = self
            .http
            .get(self.url("/jwk.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&body).expect("JWKS parses as CoreJsonWebKeySet")
    }

    async fn verify_id_token(&self, id_token: &str, nonce: &str) -> Result<DemoIdToken, String> {
        let jwks = self.jwks().await;
        let verifier = CoreIdTokenVerifier::new_confidential_client(
            ClientId::new("onbehalf-demo".into()),
            ClientSecret::new("demo-secret".into()),
            IssuerUrl::new(self.base.clone()).unwrap(),
            jwks,
        )
        .set_allowed_algs([CoreJwsSigningAlgorithm::EdDsa]);
        let token: DemoIdToken = id_token.parse().map_err(|err| format!("{err}"))?;
        token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|err| format!("{err}"))?;
        Ok(token)
    }
}

/// The transfer entry of a Globus token response.
fn transfer_tokens(response: &Value) -> &Value {
    response["other_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["resource_server"] == "transfer.api.globus.org")
        .expect("a transfer.api.globus.org token")
}

fn transfer_document(source: &str, destination: &str, submission_id: &str) -> Value {
    json!({
        "DATA_TYPE": "transfer",
        "source_endpoint": source,
        "destination_endpoint": destination,
        "submission_id": submission_id,
        "label": "demo transfer",
        "DATA": [{"DATA_TYPE": "transfer_item", "source_path": "/data/a.txt", "destination_path": "/in/a.txt"}],
    })
}

/// Any collection id, from a search.
async fn collection_ids(demo: &Demo, token: &str, count: usize) -> Vec<String> {
    let (status, page) = demo
        .transfer_get(token, "/v0.10/endpoint_search?filter_fulltext=demo&limit=50")
        .await;
    assert_eq!(status, StatusCode::OK);
    page["DATA"].as_array().unwrap()[..count]
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn discovery_parses_as_provider_metadata_and_jwks_rotates() {
    let demo = Demo::start().await;
    let body = demo
        .http
        .get(demo.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metadata: CoreProviderMetadata = serde_json::from_str(&body).expect("CoreProviderMetadata");
    assert_eq!(metadata.issuer().as_str(), demo.provider.issuer_str());
    assert!(!demo.provider.issuer_str().ends_with('/'));
    assert_eq!(
        metadata.token_endpoint().unwrap().as_str(),
        format!("{}/v2/oauth2/token", demo.base)
    );
    assert_eq!(metadata.jwks_uri().as_str(), format!("{}/jwk.json", demo.base));
    let raw: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(raw["authorization_response_iss_parameter_supported"], true);
    assert_eq!(raw["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        raw["revocation_endpoint"],
        format!("{}/v2/oauth2/token/revoke", demo.base)
    );

    let before = serde_json::to_value(demo.jwks().await).unwrap();
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);
    assert_eq!(before["keys"][0]["kty"], "OKP");
    assert_eq!(before["keys"][0]["crv"], "Ed25519");
    demo.provider.rotate_signing_key();
    let after = serde_json::to_value(demo.jwks().await).unwrap();
    assert_eq!(after["keys"].as_array().unwrap().len(), 1);
    assert_ne!(before["keys"][0]["kid"], after["keys"][0]["kid"]);
}

#[tokio::test]
async fn consent_dance_gives_tokens_per_resource_server_and_a_verifiable_id_token() {
    let demo = Demo::start().await;
    let authorized = demo.consent(&format!("{AUTH_SCOPES} {TRANSFER_SCOPE}"), 1).await;
    assert_eq!(authorized.callback["state"], "state-123");
    assert_eq!(authorized.callback["iss"], demo.provider.issuer_str());

    let response = demo.exchange(&authorized.code, &authorized.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["resource_server"], "auth.globus.org");
    assert_eq!(tokens["scope"], AUTH_SCOPES);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 172_800);
    assert_eq!(tokens["state"], "state-123");
    assert!(tokens["refresh_token"].is_string());
    let others = tokens["other_tokens"].as_array().unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["resource_server"], "transfer.api.globus.org");
    assert_eq!(others[0]["scope"], TRANSFER_SCOPE);
    assert_eq!(others[0]["state"], "state-123");
    assert!(others[0]["refresh_token"].is_string());
    assert_ne!(others[0]["access_token"], tokens["access_token"]);
    assert!(others[0].get("id_token").is_none());

    let id_token = demo
        .verify_id_token(tokens["id_token"].as_str().unwrap(), &authorized.nonce)
        .await
        .expect("the ID token verifies");
    let jwks = demo.jwks().await;
    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new("onbehalf-demo".into()),
        ClientSecret::new("demo-secret".into()),
        IssuerUrl::new(demo.base.clone()).unwrap(),
        jwks,
    )
    .set_allowed_algs([CoreJwsSigningAlgorithm::EdDsa]);
    let claims = id_token
        .claims(&verifier, &Nonce::new(authorized.nonce.clone()))
        .unwrap();
    let grace = DemoProvider::identities()[1];
    assert_eq!(claims.subject().as_str(), grace.sub);
    assert_eq!(claims.preferred_username().unwrap().as_str(), grace.username);
    assert_eq!(claims.email().unwrap().as_str(), grace.email);
    assert_eq!(claims.additional_claims().organization, grace.organization);
    assert_eq!(
        claims.additional_claims().identity_provider_display_name,
        "Demo Identity Provider"
    );
    assert_eq!(claims.additional_claims().identity_set[0].sub, grace.sub);
    assert!(claims.access_token_hash().is_some());

    // Userinfo takes the Globus Auth token, not the Transfer one.
    let auth_token = tokens["access_token"].as_str().unwrap();
    let userinfo = demo
        .http
        .get(demo.url("/v2/oauth2/userinfo"))
        .bearer_auth(auth_token)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    let userinfo: Value = userinfo.json().await.unwrap();
    assert_eq!(userinfo["sub"], grace.sub);
    assert_eq!(userinfo["preferred_username"], grace.username);
    let refused = demo
        .http
        .get(demo.url("/v2/oauth2/userinfo"))
        .bearer_auth(others[0]["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "unauthorized");
    assert_eq!(refused["errors"][0]["code"], "UNAUTHORIZED");

    let counters = demo.provider.counters();
    assert_eq!(counters.grants.get("authorization_code"), Some(&1));
    assert!(demo.provider.issued_token_values().contains(&authorized.code));
}

#[tokio::test]
async fn consent_page_lists_identities_and_scopes_and_restricts_framing() {
    let demo = Demo::start().await;
    let (_, challenge) = pkce_pair();
    let page = demo
        .authorize(&[
            ("client_id", "onbehalf-demo"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", &format!("openid email {TRANSFER_SCOPE}")),
            ("state", "<script>alert(1)</script>"),
            ("response_type", "code"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action 'self' http://127.0.0.1:9"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>Demo Globus — Allow onbehalf to act for you?</title>"));
    assert!(!html.contains("<script>"));
    assert_eq!(
        html.matches(r#"type="radio" name="identity""#).count(),
        DemoProvider::identities().len()
    );
    assert!(html.contains(&format!(r#"value="{}" checked>"#, DemoProvider::identities()[0].sub)));
    assert!(html.contains("See your email address"));
    assert!(html.contains("Use Globus Transfer for you"));
    assert!(html.contains(r#"<button type="submit" name="decision" value="allow">Allow</button>"#));
    assert!(html.contains(r#"<button type="submit" name="decision" value="deny">Deny</button>"#));
    assert!(html.contains("<legend>Sign in as</legend>"));
}

#[tokio::test]
async fn authorize_errors_redirect_only_to_a_known_client_and_valid_uri() {
    let demo = Demo::start().await;
    let (_, challenge) = pkce_pair();
    let good = |overrides: &[(&'static str, &'static str)]| {
        let mut params: Vec<(&str, String)> = vec![
            ("client_id", "onbehalf-demo".into()),
            ("redirect_uri", REDIRECT_URI.into()),
            ("scope", "openid".into()),
            ("state", "s1".into()),
            ("response_type", "code".into()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ];
        for (name, value) in overrides {
            params.retain(|(n, _)| n != name);
            if !value.is_empty() {
                params.push((name, (*value).to_owned()));
            }
        }
        params
    };
    for (overrides, what) in [
        (vec![("client_id", "someone-else")], "unknown client"),
        (vec![("redirect_uri", "")], "missing redirect_uri"),
        (vec![("redirect_uri", "/relative")], "relative redirect_uri"),
    ] {
        let params = good(&overrides);
        let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = demo.authorize(&params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(response.headers().get(header::LOCATION).is_none(), "{what}");
        assert!(response.text().await.unwrap().contains("cannot be completed"), "{what}");
    }
    for (overrides, error) in [
        (vec![("scope", "openid admin:all")], "invalid_scope"),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("response_type", "token")], "unsupported_response_type"),
    ] {
        let params = good(&overrides);
        let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = demo.authorize(&params).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{overrides:?}");
        let query = query_of(response.headers()[header::LOCATION].to_str().unwrap());
        assert_eq!(query["error"], error, "{overrides:?}");
        assert_eq!(query["state"], "s1");
        assert_eq!(query["iss"], demo.provider.issuer_str());
        assert_eq!(query["provider"], "globus", "the redirect URI's own query is kept");
    }
}

#[tokio::test]
async fn wrong_code_verifier_is_invalid_grant_and_burns_the_code() {
    let demo = Demo::start().await;
    let authorized = demo.consent("openid", 0).await;
    let (other_verifier, _) = pkce_pair();
    let response = demo.exchange(&authorized.code, &other_verifier).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].as_str().unwrap().contains("code_verifier"));
    let retry = demo.exchange(&authorized.code, &authorized.verifier).await;
    assert_eq!(retry.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(demo.provider.counters().grants.get("authorization_code"), None);
}

#[tokio::test]
async fn code_replay_is_invalid_grant_and_revokes_the_first_tokens() {
    let demo = Demo::start().await;
    let authorized = demo.consent(TRANSFER_SCOPE, 0).await;
    let first = demo.exchange(&authorized.code, &authorized.verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    let access_token = first["access_token"].as_str().unwrap();
    assert_eq!(demo.introspect(access_token).await["active"], true);

    let replay = demo.exchange(&authorized.code, &authorized.verifier).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(replay.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(demo.introspect(access_token).await, json!({"active": false}));
}

#[tokio::test]
async fn redirect_uri_must_match_the_authorize_request() {
    let demo = Demo::start().await;
    let authorized = demo.consent("openid", 0).await;
    let response = demo
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &authorized.code),
            ("redirect_uri", "http://127.0.0.1:9/oauth/callback"),
            ("code_verifier", &authorized.verifier),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].as_str().unwrap().contains("redirect_uri"));
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_a_request_is_answered_once() {
    let demo = Demo::start().await;
    let (_, challenge) = pkce_pair();
    let page = demo
        .authorize(&[
            ("client_id", "onbehalf-demo"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
            ("state", "xyz"),
            ("response_type", "code"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let request_id = request_id(&page.text().await.unwrap());
    let ada = DemoProvider::identities()[0].sub;
    let denied = demo.decide(&request_id, ada, "deny").await;
    assert_eq!(denied.status(), StatusCode::SEE_OTHER);
    let query = query_of(denied.headers()[header::LOCATION].to_str().unwrap());
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["error_description"], "The user denied access");
    assert_eq!(query["state"], "xyz");
    assert_eq!(query["iss"], demo.provider.issuer_str());
    assert!(!query.contains_key("code"));

    let again = demo.decide(&request_id, ada, "allow").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.headers().get(header::LOCATION).is_none());
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_whole_grant() {
    let demo = Demo::start().await;
    let tokens = demo.login(&format!("openid {TRANSFER_SCOPE}")).await;
    let transfer = transfer_tokens(&tokens);
    let old_refresh = transfer["refresh_token"].as_str().unwrap();

    let rotated = demo.refresh(old_refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    assert_eq!(rotated.headers()[header::CACHE_CONTROL], "no-store");
    let rotated: Value = rotated.json().await.unwrap();
    assert_eq!(rotated["resource_server"], "transfer.api.globus.org");
    assert_eq!(rotated["scope"], TRANSFER_SCOPE);
    assert_eq!(rotated["other_tokens"], json!([]));
    assert!(rotated.get("state").is_none());
    let new_refresh = rotated["refresh_token"].as_str().unwrap();
    let new_access = rotated["access_token"].as_str().unwrap();
    assert_ne!(new_refresh, old_refresh);
    let (status, _) = demo.transfer_get(new_access, "/v0.10/submission_id").await;
    assert_eq!(status, StatusCode::OK);

    let reused = demo.refresh(old_refresh).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let successor = demo.refresh(new_refresh).await;
    assert_eq!(successor.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(successor.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let (status, body) = demo.transfer_get(new_access, "/v0.10/submission_id").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "AuthenticationFailed");
    // The whole grant: the Globus Auth refresh token dies too.
    let auth_refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(demo.refresh(auth_refresh).await.status(), StatusCode::UNAUTHORIZED);

    let counters = demo.provider.counters();
    assert_eq!(counters.refresh_token_reuse, 1);
    assert_eq!(counters.grants.get("refresh_token"), Some(&1));
}

#[tokio::test]
async fn expired_access_tokens_are_inactive_but_refresh_still_works() {
    let demo = Demo::start().await;
    let tokens = demo.login(TRANSFER_SCOPE).await;
    let access = tokens["access_token"].as_str().unwrap();
    let introspected = demo.introspect(access).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["sub"], DemoProvider::identities()[0].sub);
    assert_eq!(introspected["username"], "ada@demo.globus.org");
    assert_eq!(introspected["client_id"], "onbehalf-demo");
    assert_eq!(introspected["aud"], json!(["transfer.api.globus.org", "onbehalf-demo"]));
    assert_eq!(introspected["iss"], demo.provider.issuer_str());
    assert!(introspected["exp"].as_i64().unwrap() > introspected["iat"].as_i64().unwrap());

    let expire = demo
        .http
        .post(demo.url("/demo/control/expire-tokens"))
        .json(&json!({"identity": DemoProvider::identities()[0].sub}))
        .send()
        .await
        .unwrap();
    assert_eq!(expire.status(), StatusCode::OK);
    assert_eq!(demo.introspect(access).await, json!({"active": false}));
    let (status, _) = demo.transfer_get(access, "/v0.10/submission_id").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refreshed = demo.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_resource_servers_tokens() {
    let demo = Demo::start().await;
    let tokens = demo.login(&format!("openid {TRANSFER_SCOPE}")).await;
    let transfer = transfer_tokens(&tokens);
    let response = demo
        .post_form(
            "/v2/oauth2/token/revoke",
            &[("token", transfer["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"active": false}));
    assert_eq!(
        demo.introspect(transfer["access_token"].as_str().unwrap()).await["active"],
        false
    );
    // The Globus Auth token of the same login is another resource server's: untouched.
    assert_eq!(
        demo.introspect(tokens["access_token"].as_str().unwrap()).await["active"],
        true
    );
    let refresh = demo.refresh(transfer["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    // Unknown tokens are answered the same way, and not counted.
    let unknown = demo.post_form("/v2/oauth2/token/revoke", &[("token", "nope")]).await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(demo.provider.counters().revocations, 1);
}

#[tokio::test]
async fn each_token_fault_answers_as_configured_then_clears() {
    let demo = Demo::start().await;
    let bogus = [("grant_type", "authorization_code"), ("code", "nope")];

    demo.provider.set_token_fault(TokenFault::ServerError, Some(1));
    let response = demo.token(&bogus).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    // `times: Some(1)`: the next request is served normally (and refused for its bogus code).
    let response = demo.token(&bogus).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_grant");

    demo.provider.set_token_fault(TokenFault::HtmlErrorPage, None);
    for _ in 0..2 {
        let response = demo.token(&bogus).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(
            response.text().await.unwrap(),
            "<html><body><h1>502 Bad Gateway</h1></body></html>"
        );
    }
    demo.provider.clear_token_fault();
    assert_eq!(demo.token(&bogus).await.status(), StatusCode::UNAUTHORIZED);

    demo.provider.set_token_fault(TokenFault::MalformedJson, Some(1));
    let response = demo.token(&bogus).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err());

    demo.provider.set_token_fault(TokenFault::InvalidClient, Some(1));
    let response = demo.token(&bogus).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_client");

    demo.provider.set_token_fault(TokenFault::Timeout, Some(1));
    let started = Instant::now();
    let timed_out = demo
        .http
        .post(demo.url("/v2/oauth2/token"))
        .basic_auth("onbehalf-demo", Some("demo-secret"))
        .form(&bogus)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_secs(5));

    // The same switch over HTTP.
    let set = demo
        .http
        .post(demo.url("/demo/control/token-fault"))
        .json(&json!({"fault": "server_error"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(demo.token(&bogus).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let cleared = demo
        .http
        .delete(demo.url("/demo/control/token-fault"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    assert_eq!(demo.token(&bogus).await.status(), StatusCode::UNAUTHORIZED);
    let unknown = demo
        .http
        .post(demo.url("/demo/control/token-fault"))
        .json(&json!({"fault": "meteor_strike"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);

    let counters: Value = demo
        .http
        .get(demo.url("/demo/control/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["faults_injected"], 7);
    assert_eq!(counters["token_requests"], 10);
}

#[tokio::test]
async fn token_delay_holds_the_answer_back() {
    let demo = Demo::start().await;
    let set = demo
        .http
        .post(demo.url("/demo/control/token-delay"))
        .json(&json!({"millis": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let started = Instant::now();
    let response = demo.token(&[("grant_type", "password")]).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}

#[tokio::test]
async fn id_token_faults_fail_verification() {
    let demo = Demo::start().await;
    for fault in [
        IdTokenFault::BadSignature,
        IdTokenFault::WrongAudience,
        IdTokenFault::WrongNonce,
        IdTokenFault::Expired,
        IdTokenFault::WrongIssuer,
    ] {
        demo.provider.set_id_token_fault(Some(fault));
        let authorized = demo.consent("openid", 0).await;
        let tokens: Value = demo
            .exchange(&authorized.code, &authorized.verifier)
            .await
            .json()
            .await
            .unwrap();
        let verified = demo
            .verify_id_token(tokens["id_token"].as_str().unwrap(), &authorized.nonce)
            .await;
        assert!(verified.is_err(), "{fault:?} still verifies");
    }
    demo.provider.set_id_token_fault(None);
    let authorized = demo.consent("openid", 0).await;
    let tokens: Value = demo
        .exchange(&authorized.code, &authorized.verifier)
        .await
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    assert!(demo.verify_id_token(id_token, &authorized.nonce).await.is_ok());
    // A rotated key: tokens signed before it no longer verify against the JWKS.
    demo.provider.rotate_signing_key();
    assert!(demo.verify_id_token(id_token, &authorized.nonce).await.is_err());
}

#[tokio::test]
async fn callback_iss_fault_names_another_issuer() {
    let demo = Demo::start().await;
    demo.provider.set_callback_iss_fault(true);
    let authorized = demo.consent("openid", 0).await;
    assert_eq!(authorized.callback["iss"], "https://evil.example");
    demo.provider.set_callback_iss_fault(false);
    let authorized = demo.consent("openid", 0).await;
    assert_eq!(authorized.callback["iss"], demo.provider.issuer_str());
}

#[tokio::test]
async fn endpoint_search_pages_filters_by_scope_and_caps_at_1000() {
    let demo = Demo::start().await;
    let tokens = demo.login(TRANSFER_SCOPE).await;
    let token = tokens["access_token"].as_str().unwrap();
    let ada = DemoProvider::identities()[0];
    let grace = DemoProvider::identities()[1];

    let (status, body) = demo.transfer_get(token, "/v0.10/endpoint_search").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "scope all needs filter_fulltext");
    assert!(body["message"].as_str().unwrap().contains("filter_fulltext"));

    let (status, page) = demo
        .transfer_get(token, "/v0.10/endpoint_search?filter_fulltext=DEMO&limit=100")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["DATA_TYPE"], "endpoint_list");
    assert_eq!(page["DATA"].as_array().unwrap().len(), 100);
    assert_eq!(page["has_next_page"], true);
    assert_eq!(page["DATA"][0]["DATA_TYPE"], "endpoint");
    for key in [
        "id",
        "display_name",
        "owner_id",
        "entity_type",
        "DATA",
        "expire_time",
        "gcp_connected",
    ] {
        assert!(page["DATA"][0].get(key).is_some(), "endpoint document lacks {key}");
    }

    // Default limit, and pages that add up without overlap.
    let (_, first) = demo
        .transfer_get(token, "/v0.10/endpoint_search?filter_fulltext=lab+cluster")
        .await;
    assert_eq!(first["limit"], 25);
    let mut seen = std::collections::BTreeSet::new();
    let mut offset = 0;
    loop {
        let (status, page) = demo
            .transfer_get(
                token,
                &format!("/v0.10/endpoint_search?filter_fulltext=lab%20cluster&limit=7&offset={offset}"),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        for endpoint in page["DATA"].as_array().unwrap() {
            assert!(endpoint["display_name"].as_str().unwrap().contains("Lab Cluster"));
            assert!(
                seen.insert(endpoint["id"].as_str().unwrap().to_owned()),
                "duplicate across pages"
            );
        }
        if page["has_next_page"] == false {
            break;
        }
        offset += 7;
    }
    assert!(seen.len() > 14, "more than two pages of lab clusters: {}", seen.len());

    for (query, expected) in [
        ("offset=900&limit=100&filter_fulltext=demo", StatusCode::OK),
        ("offset=901&limit=100&filter_fulltext=demo", StatusCode::BAD_REQUEST),
        ("limit=101&filter_fulltext=demo", StatusCode::BAD_REQUEST),
        ("limit=0&filter_fulltext=demo", StatusCode::BAD_REQUEST),
        ("filter_scope=everything", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = demo
            .transfer_get(token, &format!("/v0.10/endpoint_search?{query}"))
            .await;
        assert_eq!(status, expected, "{query}: {body}");
    }
    let (_, capped) = demo
        .transfer_get(
            token,
            "/v0.10/endpoint_search?offset=950&limit=100&filter_fulltext=demo",
        )
        .await;
    assert_eq!(capped["code"], "ClientError.BadRequest");
    assert_eq!(capped["message"], "offset + limit must be <= 1000");

    let (_, mine) = demo
        .transfer_get(token, "/v0.10/endpoint_search?filter_scope=my-endpoints&limit=100")
        .await;
    let mine = mine["DATA"].as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["owner_id"] == ada.sub));
    let (_, shared) = demo
        .transfer_get(token, "/v0.10/endpoint_search?filter_scope=shared-with-me&limit=100")
        .await;
    let shared = shared["DATA"].as_array().unwrap();
    assert!(!shared.is_empty());
    assert!(shared.iter().all(|e| e["owner_id"] != ada.sub));
    let (_, recent) = demo
        .transfer_get(token, "/v0.10/endpoint_search?filter_scope=recently-used")
        .await;
    assert!(!recent["DATA"].as_array().unwrap().is_empty());
    let (_, administered) = demo
        .transfer_get(
            token,
            "/v0.10/endpoint_search?filter_scope=administered-by-me&limit=100",
        )
        .await;
    assert!(administered["DATA"].as_array().unwrap().len() > mine.len());
    let (_, by_grace) = demo
        .transfer_get(
            token,
            &format!(
                "/v0.10/endpoint_search?filter_fulltext=demo&filter_owner_id={}&limit=100",
                grace.sub
            ),
        )
        .await;
    let by_grace = by_grace["DATA"].as_array().unwrap();
    assert!(!by_grace.is_empty());
    assert!(by_grace.iter().all(|e| e["owner_id"] == grace.sub));
    let (_, nothing) = demo
        .transfer_get(token, "/v0.10/endpoint_search?filter_fulltext=zzzz-no-such-thing")
        .await;
    assert_eq!(nothing["DATA"], json!([]));
    assert_eq!(nothing["has_next_page"], false);

    let id = mine[0]["id"].as_str().unwrap();
    let (status, endpoint) = demo.transfer_get(token, &format!("/v0.10/endpoint/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(endpoint["display_name"], mine[0]["display_name"]);
    let (status, missing) = demo
        .transfer_get(token, "/v0.10/endpoint/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["code"], "EndpointNotFound");

    // Only an active Transfer token opens the API.
    let (status, body) = demo
        .transfer_get("not-a-token", "/v0.10/endpoint_search?filter_fulltext=demo")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "AuthenticationFailed");
    assert_eq!(body["message"], "Token is not active");
    let auth_only = demo.login("openid").await;
    let (status, _) = demo
        .transfer_get(auth_only["access_token"].as_str().unwrap(), "/v0.10/submission_id")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(demo.provider.counters().transfer_requests >= 20);
}

#[tokio::test]
async fn consent_required_until_a_grant_includes_the_data_access_scope() {
    let demo = Demo::start().await;
    let tokens = demo.login(TRANSFER_SCOPE).await;
    let token = tokens["access_token"].as_str().unwrap();
    let ids = collection_ids(&demo, token, 2).await;
    let (source, destination) = (&ids[0], &ids[1]);
    demo.provider.require_consent(source);

    let (_, submission) = demo.transfer_get(token, "/v0.10/submission_id").await;
    let submission_id = submission["value"].as_str().unwrap();
    let document = transfer_document(source, destination, submission_id);
    let (status, refused) = demo.submit(token, &document).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["code"], "ConsentRequired");
    let required = format!("{TRANSFER_SCOPE}[*https://auth.globus.org/scopes/{source}/data_access]");
    assert_eq!(refused["required_scopes"], json!([required]));
    assert_eq!(
        refused["authorization_parameters"]["required_scopes"],
        json!([required])
    );
    assert_eq!(
        refused["authorization_parameters"]["session_required_identities"],
        json!([])
    );
    assert_eq!(demo.provider.counters().consent_required, 1);

    // Log in again asking for exactly what the error named.
    let consented = demo.login(&format!("openid {required}")).await;
    let transfer = transfer_tokens(&consented);
    assert_eq!(transfer["scope"], required);
    let (status, accepted) = demo.submit(transfer["access_token"].as_str().unwrap(), &document).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["code"], "Accepted");
    // The old token's grant still lacks the consent.
    let (status, _) = demo
        .submit(
            token,
            &transfer_document(destination, source, &uuid::Uuid::new_v4().to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn submission_ids_make_transfers_idempotent_and_tasks_finish() {
    let demo = Demo::start().await;
    let tokens = demo.login(TRANSFER_SCOPE).await;
    let token = tokens["access_token"].as_str().unwrap();
    let ids = collection_ids(&demo, token, 2).await;

    let (status, submission) = demo.transfer_get(token, "/v0.10/submission_id").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(submission["DATA_TYPE"], "submission_id");
    let submission_id = submission["value"].as_str().unwrap();
    let document = transfer_document(&ids[0], &ids[1], submission_id);

    let (status, first) = demo.submit(token, &document).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first["DATA_TYPE"], "transfer_result");
    assert_eq!(first["code"], "Accepted");
    assert_eq!(first["submission_id"], submission_id);
    let task_id = first["task_id"].as_str().unwrap();
    assert_eq!(first["task_link"]["href"], format!("/v0.10/task/{task_id}?format=json"));
    let (status, second) = demo.submit(token, &document).await;
    assert!(status.is_success());
    assert_eq!(second["code"], "Duplicate");
    assert_eq!(second["task_id"], task_id);

    let mut empty = document.clone();
    empty["DATA"] = json!([]);
    empty["submission_id"] = json!(uuid::Uuid::new_v4().to_string());
    let (status, failure) = demo.submit(token, &empty).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(failure["code"], "ClientError.BadRequest.NoTransferItems");
    let mut unknown = document.clone();
    unknown["source_endpoint"] = json!("00000000-0000-0000-0000-000000000000");
    unknown["submission_id"] = json!(uuid::Uuid::new_v4().to_string());
    let (status, missing) = demo.submit(token, &unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["code"], "EndpointNotFound");

    let (_, list) = demo.transfer_get(token, "/v0.10/task_list").await;
    assert_eq!(list["DATA_TYPE"], "task_list");
    assert_eq!(list["total"], 1);
    assert_eq!(list["DATA"][0]["task_id"], task_id);
    assert_eq!(list["DATA"][0]["status"], "ACTIVE");
    assert_eq!(list["DATA"][0]["owner_id"], DemoProvider::identities()[0].sub);
    let (_, succeeded) = demo
        .transfer_get(token, "/v0.10/task_list?filter=status:SUCCEEDED")
        .await;
    assert_eq!(succeeded["total"], 0);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (_, succeeded) = demo
        .transfer_get(token, "/v0.10/task_list?filter=status:ACTIVE,SUCCEEDED&limit=5")
        .await;
    assert_eq!(succeeded["total"], 1);
    assert_eq!(succeeded["DATA"][0]["status"], "SUCCEEDED");
    let (status, task) = demo.transfer_get(token, &format!("/v0.10/task/{task_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["status"], "SUCCEEDED");
    assert_eq!(task["label"], "demo transfer");
    assert!(task["completion_time"].is_string());

    // Another identity sees none of Ada's tasks.
    let grace = demo.consent(TRANSFER_SCOPE, 1).await;
    let grace: Value = demo.exchange(&grace.code, &grace.verifier).await.json().await.unwrap();
    let grace_token = grace["access_token"].as_str().unwrap();
    let (_, list) = demo.transfer_get(grace_token, "/v0.10/task_list").await;
    assert_eq!(list["total"], 0);
    let (status, _) = demo.transfer_get(grace_token, &format!("/v0.10/task/{task_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `POST /task/{id}/cancel` answers with the shape of globus-sdk's `transfer.cancel_task` data; the task ends
/// FAILED with the `CANCELED` fatal error; a task that had already ended answers `TaskComplete`; nobody cancels
/// another identity's task.
#[tokio::test]
async fn a_task_is_cancelled_once_and_only_by_its_owner() {
    let demo = Demo::start().await;
    let tokens = demo.login(TRANSFER_SCOPE).await;
    let token = tokens["access_token"].as_str().unwrap();
    let ids = collection_ids(&demo, token, 2).await;
    let ada = DemoProvider::identities()[0].sub;
    demo.provider.set_task_duration(Some(ada), Duration::from_secs(3600));
    let long = demo.start_task(token, &ids).await;
    // Another identity sees no such task.
    let grace = demo.consent(TRANSFER_SCOPE, 1).await;
    let grace: Value = demo.exchange(&grace.code, &grace.verifier).await.json().await.unwrap();
    let (status, _) = demo.cancel(grace["access_token"].as_str().unwrap(), &long).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, cancelled) = demo.cancel(token, &long).await;
    assert_eq!(status, StatusCode::OK);
    let fixture: Value = serde_json::from_str(include_str!("../fixtures/globus/transfer.cancel_task.json")).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&cancelled), keys(&fixture), "{cancelled}");
    assert_eq!(cancelled["code"], fixture["code"]);
    assert_eq!(cancelled["resource"], format!("/task/{long}/cancel"));
    let (_, task) = demo.transfer_get(token, &format!("/v0.10/task/{long}")).await;
    assert_eq!(task["status"], "FAILED");
    assert_eq!(task["fatal_error"]["code"], "CANCELED");
    assert!(task["completion_time"].is_string());
    let (status, again) = demo.cancel(token, &long).await;
    assert_eq!((status, again["code"].as_str()), (StatusCode::OK, Some("TaskComplete")));
    let (status, events) = demo
        .transfer_get(token, &format!("/v0.10/task/{long}/event_list"))
        .await;
    assert_eq!(
        (status, events["DATA_TYPE"].as_str()),
        (StatusCode::OK, Some("event_list"))
    );
    let codes: Vec<&str> = events["DATA"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["CANCELED", "STARTED"], "newest first: {events}");
    assert_eq!(events["DATA"][0]["is_error"], true);

    // A task that finished first is not cancelled.
    demo.provider.set_task_duration(Some(ada), Duration::from_millis(10));
    let short = demo.start_task(token, &ids).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, done) = demo.cancel(token, &short).await;
    assert_eq!(done["code"], "TaskComplete");
    let (_, task) = demo.transfer_get(token, &format!("/v0.10/task/{short}")).await;
    assert_eq!(task["status"], "SUCCEEDED");
    let (status, missing) = demo.cancel(token, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("TaskNotFound"))
    );
}

#[tokio::test]
async fn wrong_client_credentials_are_invalid_client() {
    let demo = Demo::start().await;
    let form = [("grant_type", "client_credentials"), ("scope", TRANSFER_SCOPE)];
    let basic = demo
        .http
        .post(demo.url("/v2/oauth2/token"))
        .basic_auth("onbehalf-demo", Some("wrong-secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(basic.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(basic.json::<Value>().await.unwrap()["error"], "invalid_client");

    let post = demo
        .http
        .post(demo.url("/v2/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", TRANSFER_SCOPE),
            ("client_id", "onbehalf-demo"),
            ("client_secret", "wrong-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(post.json::<Value>().await.unwrap()["error"], "invalid_client");

    let anonymous = demo
        .http
        .post(demo.url("/v2/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let introspect = demo
        .http
        .post(demo.url("/v2/oauth2/token/introspect"))
        .basic_auth("onbehalf-demo", Some("wrong-secret"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(introspect.status(), StatusCode::UNAUTHORIZED);

    // client_secret_post with the right secret works; the client acts as itself.
    let own = demo
        .http
        .post(demo.url("/v2/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", TRANSFER_SCOPE),
            ("client_id", "onbehalf-demo"),
            ("client_secret", "demo-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["resource_server"], "transfer.api.globus.org");
    assert!(own.get("refresh_token").is_none());
    assert!(own.get("id_token").is_none());
    let introspected = demo.introspect(own["access_token"].as_str().unwrap()).await;
    assert_eq!(introspected["sub"], "onbehalf-demo");
    let counters = demo.provider.counters();
    assert_eq!(counters.grants.get("client_credentials"), Some(&1));
    assert_eq!(counters.token_requests, 4);
}

#[tokio::test]
async fn plain_oidc_flavor_answers_like_rfc_6749() {
    let demo = Demo::start_with(DemoConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        flavor: Flavor::PlainOidc,
        access_token_lifetime: Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    let authorized = demo.consent(&format!("openid email {TRANSFER_SCOPE}"), 2).await;
    let tokens: Value = demo
        .exchange(&authorized.code, &authorized.verifier)
        .await
        .json()
        .await
        .unwrap();
    assert!(tokens.get("other_tokens").is_none());
    assert!(tokens.get("resource_server").is_none());
    assert!(tokens.get("state").is_none());
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], format!("openid email {TRANSFER_SCOPE}"));
    let access = tokens["access_token"].as_str().unwrap();
    assert!(
        demo.verify_id_token(tokens["id_token"].as_str().unwrap(), &authorized.nonce)
            .await
            .is_ok()
    );
    // One token for every scope: userinfo and Transfer both take it.
    let (status, _) = demo.transfer_get(access, "/v0.10/submission_id").await;
    assert_eq!(status, StatusCode::OK);
    let userinfo = demo
        .http
        .get(demo.url("/v2/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);

    let refreshed: Value = demo
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert!(refreshed.get("other_tokens").is_none());
    assert!(refreshed["refresh_token"].is_string());
    let reused = demo.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        reused.status(),
        StatusCode::BAD_REQUEST,
        "plain OAuth sends invalid_grant as 400"
    );
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn revoke_grants_switch_kills_one_identitys_tokens() {
    let demo = Demo::start().await;
    let ada = demo.login(TRANSFER_SCOPE).await;
    let grace = demo.consent(TRANSFER_SCOPE, 1).await;
    let grace: Value = demo.exchange(&grace.code, &grace.verifier).await.json().await.unwrap();
    let response = demo
        .http
        .post(demo.url("/demo/control/revoke-grants"))
        .json(&json!({"identity": DemoProvider::identities()[0].sub}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        demo.introspect(ada["access_token"].as_str().unwrap()).await["active"],
        false
    );
    assert_eq!(
        demo.refresh(ada["refresh_token"].as_str().unwrap()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        demo.introspect(grace["access_token"].as_str().unwrap()).await["active"],
        true
    );
    demo.provider.revoke_grants(None);
    assert_eq!(
        demo.introspect(grace["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

/// Log lines written by the provider, captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// On a current-thread runtime the server's tasks run on this thread, so a thread-local subscriber sees their logs.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_token_or_code_values() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let demo = Demo::start().await;
    let authorized = demo.consent(&format!("openid {TRANSFER_SCOPE}"), 0).await;
    let tokens: Value = demo
        .exchange(&authorized.code, &authorized.verifier)
        .await
        .json()
        .await
        .unwrap();
    let transfer = transfer_tokens(&tokens);
    let refresh = transfer["refresh_token"].as_str().unwrap();
    assert_eq!(demo.refresh(refresh).await.status(), StatusCode::OK);
    assert_eq!(demo.refresh(refresh).await.status(), StatusCode::UNAUTHORIZED);
    demo.post_form("/v2/oauth2/token/revoke", &[("token", refresh)]).await;
    demo.introspect(transfer["access_token"].as_str().unwrap()).await;
    let replay = demo.exchange(&authorized.code, &authorized.verifier).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("refresh token reused"),
        "the provider logged nothing useful:\n{logs}"
    );
    let issued = demo.provider.issued_token_values();
    assert!(issued.len() >= 6);
    for value in issued.iter().chain([&authorized.verifier, &"demo-secret".to_owned()]) {
        assert!(!logs.contains(value.as_str()), "a secret value reached the log");
    }
}

/// `GET operation/endpoint/{id}/ls` answers with the keys of `transfer.operation_ls.json` (the envelope and every
/// entry); it orders, filters and pages as Transfer does, and refuses with Transfer's codes.
#[tokio::test]
async fn folders_list_in_the_shape_of_the_fixture() {
    let demo = Demo::start().await;
    let tokens = demo.login(TRANSFER_SCOPE).await;
    let token = tokens["access_token"].as_str().unwrap();
    let id = &collection_ids(&demo, token, 1).await[0];
    let fixture: Value = serde_json::from_str(include_str!("../fixtures/globus/transfer.operation_ls.json")).unwrap();
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let ls = |query: String| {
        let demo = &demo;
        async move {
            demo.transfer_get(token, &format!("/v0.10/operation/endpoint/{id}/ls{query}"))
                .await
        }
    };
    let (status, home) = ls("?path=/~/".into()).await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert_eq!(keys(&home), keys(&fixture));
    for entry in home["DATA"].as_array().unwrap() {
        assert_eq!(keys(entry), keys(&fixture["DATA"][0]), "{entry}");
    }
    assert_eq!(home["DATA_TYPE"], "file_list");
    assert_eq!(
        home["DATA"][0]["name"], "README.md",
        "by name, ASCII order, unless asked otherwise"
    );
    let link = home["DATA"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "link")
        .unwrap();
    assert_eq!(link["link_target"], "/~/datasets/2025/");
    // Folders first, largest first; a filter, then a page of it.
    let (_, sorted) = ls("?path=/~/&orderby=type%20ASC,size%20DESC".into()).await;
    let types: Vec<&str> = sorted["DATA"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(&types[..4], ["dir", "dir", "dir", "dir"], "{types:?}");
    assert_eq!(sorted["DATA"][4]["name"], "results.csv", "the largest file: {sorted}");
    let (_, page) = ls("?path=/~/many-files&filter=name:~sample-000?.dat&offset=5&limit=3".into()).await;
    assert_eq!(
        (page["total"].as_u64(), page["length"].as_u64()),
        (Some(9), Some(3)),
        "{page}"
    );
    assert_eq!(page["DATA"][0]["name"], "sample-0006.dat");
    // Refusals, with Transfer's codes.
    for (query, status, code) in [
        ("?path=/~/private/", StatusCode::FORBIDDEN, "PermissionDenied"),
        ("?path=/~/nowhere/", StatusCode::NOT_FOUND, "ClientError.NotFound"),
        (
            "?path=/~/notes.txt",
            StatusCode::BAD_GATEWAY,
            "ExternalError.DirListingFailed.NotDirectory",
        ),
        ("?orderby=owner", StatusCode::BAD_REQUEST, "ClientError.BadRequest"),
        ("?path=/~/&path=/", StatusCode::BAD_REQUEST, "ClientError.BadRequest"),
    ] {
        let (got, body) = ls(query.into()).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{query}: {body}");
    }
    let (status, body) = demo
        .transfer_get(
            token,
            "/v0.10/operation/endpoint/0b0f5d3c-1f4e-4c7a-9a84-7b43c1e2f3a4/ls",
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("EndpointNotFound"))
    );
    // A collection that needs its data_access consent refuses with ConsentRequired, naming its scope.
    demo.provider.require_consent(id);
    let (status, body) = ls("?path=/~/".into()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("ConsentRequired"))
    );
    assert!(
        body["required_scopes"][0]
            .as_str()
            .unwrap()
            .contains(&format!("{id}/data_access")),
        "{body}"
    );
}
