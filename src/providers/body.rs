//! Reading a provider's answer with a byte cap. Every body a provider sends (token responses, revocation refusals,
//! discovery documents, JWK sets, userinfo, delegated API answers) is read through [`read_capped`]: a `Content-Length`
//! over the cap is refused before a byte is read, and a body without one (chunked, or a connection held open) is
//! read chunk by chunk and dropped as soon as it passes the cap. A body that never ends is therefore cut at the cap,
//! and one that stalls ends at the HTTP client's total timeout (`[outbound] timeout`, which covers the body too), so
//! neither memory nor a request's time depends on what the provider chooses to send.

use bytes::{Bytes, BytesMut};

use super::discovery::describe;

/// Token endpoints, revocation, discovery, JWKS and userinfo: answers of a few KiB; a quarter MiB is not one.
pub const SMALL: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// `size` is the announced length, or how much had arrived when reading stopped.
    #[error("the answer was larger than {cap} bytes (at least {size}); it was not read")]
    TooLarge { cap: usize, size: u64 },
    /// The connection failed or timed out while the body was arriving.
    #[error("the answer could not be read ({0})")]
    Read(String),
}

/// The whole body of `response`, or an error once it passes `cap` bytes.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Bytes, BodyError> {
    if let Some(size) = response.content_length()
        && size > cap as u64
    {
        return Err(BodyError::TooLarge { cap, size });
    }
    // Capacity from the announced length (already checked) or a small start: a lying header costs nothing.
    let mut body = BytesMut::with_capacity(response.content_length().map_or(8 * 1024, |n| n as usize));
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::Read(describe(&e)))? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge {
                cap,
                size: (body.len() + chunk.len()) as u64,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, time::Duration};

    use axum::{Router, body::Body, routing::get};
    use futures::stream;

    use super::*;

    /// A loopback server whose `/endless` never stops sending, `/big` announces 10 MB, `/small` is 3 bytes and
    /// `/stall` sends a little and then nothing.
    async fn server() -> String {
        let endless = || async {
            let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
            Body::from_stream(stream::repeat_with(move || Ok::<_, Infallible>(chunk.clone())))
        };
        let stall = || async {
            let first = stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b"{\"a\":")) });
            let never = stream::once(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, Infallible>(Bytes::from_static(b"1}"))
            });
            Body::from_stream(futures::StreamExt::chain(first, never))
        };
        let app = Router::new()
            .route("/endless", get(endless))
            .route("/big", get(|| async { vec![b' '; 10 * 1024 * 1024] }))
            .route("/small", get(|| async { "abc" }))
            .route("/stall", get(stall));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    #[tokio::test]
    async fn bodies_past_the_cap_are_refused_and_small_ones_read() {
        let base = server().await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let get = |path: &str| http.get(format!("{base}{path}")).send();

        let small = read_capped(get("/small").await.unwrap(), 3).await;
        assert_eq!(small, Ok(Bytes::from_static(b"abc")));
        let announced = read_capped(get("/big").await.unwrap(), SMALL).await;
        assert_eq!(
            announced,
            Err(BodyError::TooLarge {
                cap: SMALL,
                size: 10 * 1024 * 1024
            })
        );
        let endless = read_capped(get("/endless").await.unwrap(), SMALL).await;
        assert!(
            matches!(endless, Err(BodyError::TooLarge { cap: SMALL, size }) if size > SMALL as u64 && size <= (SMALL + 64 * 1024) as u64),
            "{endless:?}"
        );
        let stalled = read_capped(get("/stall").await.unwrap(), SMALL).await;
        assert_eq!(stalled, Err(BodyError::Read("timed out".into())));
        assert!(
            stalled.unwrap_err().to_string().contains("timed out"),
            "the error says what happened"
        );
    }
}
