//! The checks an Engine.IO server makes on every HTTP request before a session sees it, in the
//! reference's order (`engine.io` 6.6 `verify` then `handshake`), and the error codes and
//! bodies it answers with. The driver reads the request line and headers, asks [`verify`] what
//! the request is, and answers an [`ErrorCode`] with status 400 and [`ErrorCode::body`].

use std::borrow::Cow;

use crate::engine::Protocol;
use crate::engine::Transport;

/// The reference's Engine.IO error codes (`Server.errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 0: no `transport`, or one the server does not offer.
    TransportUnknown = 0,
    /// 1: a `sid` that names no session.
    UnknownSid = 1,
    /// 2: a handshake that is not a GET.
    BadHandshakeMethod = 2,
    /// 3: anything else malformed.
    BadRequest = 3,
    /// 4: refused by the application (`allowRequest`), answered with 403 and its own message.
    Forbidden = 4,
    /// 5: an `EIO` version the server does not speak.
    UnsupportedProtocolVersion = 5,
}

impl ErrorCode {
    /// The reference's message for the code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::TransportUnknown => "Transport unknown",
            ErrorCode::UnknownSid => "Session ID unknown",
            ErrorCode::BadHandshakeMethod => "Bad handshake method",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The JSON body of the error answer: `{"code":N,"message":"..."}`.
    ///
    /// ```
    /// use ferrio_proto::engine::request::ErrorCode;
    /// assert_eq!(ErrorCode::UnknownSid.body(), r#"{"code":1,"message":"Session ID unknown"}"#);
    /// ```
    pub fn body(self) -> String {
        format!(
            r#"{{"code":{},"message":"{}"}}"#,
            self as u8,
            self.message()
        )
    }
}

/// The HTTP method, as far as Engine.IO cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: a handshake, a poll, or a WebSocket upgrade.
    Get,
    /// `POST`: data from a polling client.
    Post,
    /// Any other method.
    Other,
}

/// The query parameters Engine.IO reads (the first of each name), borrowed from the query
/// string unless they had to be decoded: reading a request's query allocates nothing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    /// `EIO`: the protocol version.
    pub eio: Option<Cow<'a, str>>,
    /// `transport`: `polling` or `websocket`.
    pub transport: Option<Cow<'a, str>>,
    /// `sid`: the session, after the handshake.
    pub sid: Option<Cow<'a, str>>,
    /// `b64`: the client cannot take binary and asks for it as base64 text.
    pub b64: Option<Cow<'a, str>>,
    raw: &'a str,
}

impl<'a> Query<'a> {
    /// Parses a query string (without the `?`).
    ///
    /// ```
    /// use ferrio_proto::engine::request::Query;
    /// let q = Query::parse(Some("EIO=4&transport=polling&t=x&EIO=3"));
    /// assert_eq!(q.eio.as_deref(), Some("4"));
    /// assert_eq!(q.all().len(), 4);
    /// ```
    pub fn parse(query: Option<&'a str>) -> Query<'a> {
        let raw = query.unwrap_or_default();
        let mut q = Query {
            raw,
            ..Query::default()
        };
        if plain_pairs(raw, |k, v| q.keep(k.into(), v.into())) {
            return q;
        }
        q = Query {
            raw,
            ..Query::default()
        };
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            q.keep(k, v);
        }
        q
    }

    /// Keeps the value of parameter `k` if it is one Engine.IO reads and its first.
    fn keep(&mut self, k: Cow<'a, str>, v: Cow<'a, str>) {
        let slot = match &*k {
            "EIO" => &mut self.eio,
            "transport" => &mut self.transport,
            "sid" => &mut self.sid,
            "b64" => &mut self.b64,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }

    /// Every parameter, decoded, in order (the handshake keeps them for the application).
    pub fn all(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// Calls `f` with each pair of a query string with nothing to decode (no `%`, no `+`: the
/// usual one), split as `form_urlencoded::parse` splits it, in one pass over its bytes. False
/// (and `f` perhaps called for some pairs) if there is something to decode.
fn plain_pairs<'a>(raw: &'a str, mut f: impl FnMut(&'a str, &'a str)) -> bool {
    let bytes = raw.as_bytes();
    let (mut start, mut eq) = (0, None);
    for i in 0..=bytes.len() {
        match bytes.get(i).copied().unwrap_or(b'&') {
            b'%' | b'+' => return false,
            b'=' if eq.is_none() => eq = Some(i),
            b'&' => {
                if i > start {
                    match eq {
                        Some(e) => f(&raw[start..e], &raw[e + 1..i]),
                        None => f(&raw[start..i], ""),
                    }
                }
                (start, eq) = (i + 1, None);
            }
            _ => {}
        }
    }
    true
}

/// What the server offers (its options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// HTTP long-polling is enabled.
    pub polling: bool,
    /// WebSocket is enabled.
    pub websocket: bool,
    /// Engine.IO 3 clients are accepted (`allowEIO3`).
    pub allow_eio3: bool,
}

/// An Engine.IO request, as [`verify`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: Method,
    /// The parsed query.
    pub query: &'a Query<'a>,
    /// The request has `Upgrade: websocket`.
    pub websocket_upgrade: bool,
    /// The raw values of the `Origin` headers.
    pub origins: &'a [&'a [u8]],
}

/// What a verified request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// A new session (a GET without `sid`). The application's `allowRequest` comes next, then
    /// [`crate::engine::server::Session::from_handshake`].
    Handshake(Handshake),
    /// A request of session `sid`: check it with [`Route::check_session`] once found.
    Session {
        /// The session id.
        sid: Cow<'a, str>,
        /// What the request does.
        action: SessionAction,
        /// The `EIO` value sent.
        eio: Option<Cow<'a, str>>,
    },
}

/// What a handshake request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The transport asked for.
    pub transport: Transport,
    /// The protocol version asked for.
    pub protocol: Protocol,
    /// The client cannot take binary (`b64` set): binary goes to it as base64 text.
    pub base64: bool,
}

/// What a request does to an existing session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    /// A polling GET.
    Poll,
    /// A polling POST.
    Post,
    /// A polling request with another method (the reference answers 500).
    OtherMethod,
    /// A WebSocket upgrade (a probe, or a session's WebSocket).
    Upgrade,
}

impl Route<'_> {
    /// The same route, owning its strings (to keep it past the request it was read from).
    pub fn into_owned(self) -> Route<'static> {
        match self {
            Route::Handshake(handshake) => Route::Handshake(handshake),
            Route::Session { sid, action, eio } => Route::Session {
                sid: Cow::Owned(sid.into_owned()),
                action,
                eio: eio.map(|e| Cow::Owned(e.into_owned())),
            },
        }
    }

    /// For a [`Route::Session`] whose session speaks `protocol`: an upgrade must ask for the
    /// session's own protocol version (engine.io 6.6.12). Other routes pass.
    pub fn check_session(&self, protocol: Protocol) -> Result<(), ErrorCode> {
        match self {
            Route::Session {
                action: SessionAction::Upgrade,
                eio,
                ..
            } if eio.as_deref() != Some(version(protocol)) => Err(ErrorCode::BadRequest),
            _ => Ok(()),
        }
    }
}

/// The `EIO` query value of `protocol`.
pub fn version(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::V3 => "3",
        Protocol::V4 => "4",
    }
}

/// The reference's `checkInvalidHeaderChar` on an `Origin` value: only tab, visible ASCII,
/// space and bytes 0x80–0xff.
pub fn origin_is_valid(origin: &[u8]) -> bool {
    origin
        .iter()
        .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)
}

/// Verifies a request as the reference does, in its order: the transport, the `Origin` header,
/// then for a session request its shape, for a handshake the method, the WebSocket upgrade and
/// the protocol version.
///
/// ```
/// use ferrio_proto::engine::request::{verify, ErrorCode, Handshake, Method, Policy, Query, RequestHead, Route};
/// use ferrio_proto::engine::{server::Transport, Protocol};
/// let policy = Policy { polling: true, websocket: true, allow_eio3: false };
/// let q = Query::parse(Some("EIO=4&transport=polling"));
/// let head = RequestHead { method: Method::Get, query: &q, websocket_upgrade: false, origins: &[] };
/// assert_eq!(verify(&head, &policy), Ok(Route::Handshake(Handshake { transport: Transport::Polling, protocol: Protocol::V4, base64: false })));
/// let q = Query::parse(Some("EIO=3&transport=polling"));
/// let head = RequestHead { query: &q, ..head };
/// assert_eq!(verify(&head, &policy), Err(ErrorCode::UnsupportedProtocolVersion));
/// ```
pub fn verify<'a>(head: &RequestHead<'a>, policy: &Policy) -> Result<Route<'a>, ErrorCode> {
    let query = head.query;
    let transport = match query.transport.as_deref() {
        Some("polling") if policy.polling => Transport::Polling,
        Some("websocket") if policy.websocket => Transport::WebSocket,
        _ => return Err(ErrorCode::TransportUnknown),
    };
    if !head.origins.iter().all(|o| origin_is_valid(o)) {
        return Err(ErrorCode::BadRequest);
    }
    if let Some(sid) = &query.sid {
        let action = match (transport, head.websocket_upgrade, head.method) {
            (Transport::WebSocket, true, _) => SessionAction::Upgrade,
            (Transport::WebSocket, false, _) => return Err(ErrorCode::BadRequest),
            (Transport::Polling, _, Method::Get) => SessionAction::Poll,
            (Transport::Polling, _, Method::Post) => SessionAction::Post,
            (Transport::Polling, _, Method::Other) => SessionAction::OtherMethod,
        };
        return Ok(Route::Session {
            sid: sid.clone(),
            action,
            eio: query.eio.clone(),
        });
    }
    if head.method != Method::Get {
        return Err(ErrorCode::BadHandshakeMethod);
    }
    if transport == Transport::WebSocket && !head.websocket_upgrade {
        return Err(ErrorCode::BadRequest);
    }
    let protocol = match query.eio.as_deref() {
        Some("4") => Protocol::V4,
        Some("3") if policy.allow_eio3 => Protocol::V3,
        _ => return Err(ErrorCode::UnsupportedProtocolVersion),
    };
    // engine.io: `supportsBinary = !req._query.b64`, so any non-empty value asks for base64.
    let base64 = query.b64.as_deref().is_some_and(|v| !v.is_empty());
    Ok(Route::Handshake(Handshake {
        transport,
        protocol,
        base64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_what_form_urlencoded_gives() {
        for q in [
            "",
            "EIO=4&transport=polling&sid=abc-_DEF",
            "&&EIO=4&&t=&x&=y&=&a==b&sid=1&sid=2",
            "EIO=4&transport=polling&t=P%20q&b64=1",
            "a+b=c+d&EIO=%34",
            "sid=1&EIO=4&sid=%32&EIO=%33",
            "s%C3%A9=%FF&x=%",
            "é=ü&transport=websocket",
        ] {
            let mut ours = Vec::new();
            let plain = plain_pairs(q, |k, v| ours.push((k.to_owned(), v.to_owned())));
            let reference: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(plain, !q.contains(['%', '+']), "{q}");
            if plain {
                assert_eq!(ours, reference, "{q}");
            }
            let parsed = Query::parse(Some(q));
            let first = |name: &str| {
                reference
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(parsed.eio.as_deref(), first("EIO"), "{q}");
            assert_eq!(parsed.transport.as_deref(), first("transport"), "{q}");
            assert_eq!(parsed.sid.as_deref(), first("sid"), "{q}");
            assert_eq!(parsed.b64.as_deref(), first("b64"), "{q}");
        }
        let q = Query::parse(Some("EIO=4&transport=polling&sid=abc&EIO=3"));
        assert!(matches!(q.eio, Some(Cow::Borrowed("4"))));
        assert!(matches!(q.sid, Some(Cow::Borrowed("abc"))));
    }

    const BOTH: Policy = Policy {
        polling: true,
        websocket: true,
        allow_eio3: false,
    };

    fn check(
        method: Method,
        query: &str,
        ws: bool,
        policy: &Policy,
    ) -> Result<Route<'static>, ErrorCode> {
        let q = Query::parse(Some(query));
        verify(
            &RequestHead {
                method,
                query: &q,
                websocket_upgrade: ws,
                origins: &[],
            },
            policy,
        )
        .map(Route::into_owned)
    }

    #[test]
    fn the_reference_error_codes_in_its_order() {
        use ErrorCode::*;
        assert_eq!(
            check(Method::Get, "EIO=4", false, &BOTH),
            Err(TransportUnknown)
        );
        assert_eq!(
            check(Method::Get, "EIO=4&transport=tobi", false, &BOTH),
            Err(TransportUnknown)
        );
        let polling_only = Policy {
            websocket: false,
            ..BOTH
        };
        assert_eq!(
            check(
                Method::Get,
                "EIO=4&transport=websocket",
                true,
                &polling_only
            ),
            Err(TransportUnknown)
        );
        assert_eq!(
            check(Method::Post, "EIO=4&transport=polling", false, &BOTH),
            Err(BadHandshakeMethod)
        );
        assert_eq!(
            check(Method::Get, "EIO=4&transport=websocket", false, &BOTH),
            Err(BadRequest)
        );
        assert_eq!(
            check(Method::Get, "transport=polling", false, &BOTH),
            Err(UnsupportedProtocolVersion)
        );
        assert_eq!(
            check(Method::Get, "EIO=5&transport=polling", false, &BOTH),
            Err(UnsupportedProtocolVersion)
        );
        assert_eq!(
            check(
                Method::Get,
                "EIO=3&transport=polling",
                false,
                &Policy {
                    allow_eio3: true,
                    ..BOTH
                }
            ),
            Ok(Route::Handshake(Handshake {
                transport: Transport::Polling,
                protocol: Protocol::V3,
                base64: false,
            }))
        );
        // A bad Origin is refused before anything about the session.
        let q = Query::parse(Some("EIO=4&transport=polling&sid=x"));
        let head = RequestHead {
            method: Method::Get,
            query: &q,
            websocket_upgrade: false,
            origins: &[b"bad\x01"],
        };
        assert_eq!(verify(&head, &BOTH), Err(BadRequest));
    }

    #[test]
    fn session_requests() {
        let route = check(
            Method::Get,
            "EIO=4&transport=websocket&sid=abc",
            true,
            &BOTH,
        )
        .unwrap();
        assert_eq!(route.check_session(Protocol::V4), Ok(()));
        assert_eq!(
            route.check_session(Protocol::V3),
            Err(ErrorCode::BadRequest)
        );
        let route = check(
            Method::Get,
            "EIO=3&transport=websocket&sid=abc",
            true,
            &BOTH,
        )
        .unwrap();
        assert_eq!(route.check_session(Protocol::V3), Ok(()));
        assert_eq!(
            check(
                Method::Get,
                "EIO=4&transport=websocket&sid=abc",
                false,
                &BOTH
            ),
            Err(ErrorCode::BadRequest)
        );
        assert!(matches!(
            check(
                Method::Post,
                "EIO=4&transport=polling&sid=abc",
                false,
                &BOTH
            ),
            Ok(Route::Session {
                action: SessionAction::Post,
                ..
            })
        ));
        assert!(matches!(
            check(
                Method::Other,
                "EIO=4&transport=polling&sid=abc",
                false,
                &BOTH
            ),
            Ok(Route::Session {
                action: SessionAction::OtherMethod,
                ..
            })
        ));
    }

    #[test]
    fn query_reads_the_first_of_each() {
        let q = Query::parse(Some("EIO=4&transport=polling&t=abc&sid=x%2By&EIO=3"));
        assert_eq!(q.eio.as_deref(), Some("4"));
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert_eq!(q.sid.as_deref(), Some("x+y"));
        assert_eq!(q.all().len(), 5);
    }

    #[test]
    fn bodies() {
        assert_eq!(
            ErrorCode::UnsupportedProtocolVersion.body(),
            r#"{"code":5,"message":"Unsupported protocol version"}"#
        );
        assert!(origin_is_valid(b"http://a.example\t\x80"));
        assert!(!origin_is_valid(b"a\nb"));
    }

    #[test]
    fn a_handshake_asks_for_base64_with_any_non_empty_b64() {
        let base64 = |query: &str| match check(Method::Get, query, false, &BOTH) {
            Ok(Route::Handshake(h)) => h.base64,
            other => panic!("not a handshake: {other:?}"),
        };
        assert!(!base64("EIO=4&transport=polling"));
        assert!(base64("EIO=4&transport=polling&b64=1"));
        // engine.io: `supportsBinary = !req._query.b64`: any non-empty string is truthy.
        assert!(base64("EIO=4&transport=polling&b64=true"));
        assert!(!base64("EIO=4&transport=polling&b64="));
        // The first `b64` counts, as for the other parameters.
        assert!(base64("EIO=4&transport=polling&b64=1&b64="));
    }
}
