//! gzip for answers held in memory (every JSON body), compressed right on the worker and sent
//! with a `Content-Length`. Streamed bodies (the contacts export) are left to actix's
//! `Compress`, wrapped outside.
//!
//! actix's `Compress` (still wrapped outside this one, for streamed bodies such as attachment
//! downloads) hands every body over 1 KiB to the blocking thread pool and sends the result
//! chunked: for a page of 25 conversations the hop to that pool and back cost more than the
//! compression itself, and a gzip client waited about 1.45 times as long as a plain one.

use std::io::Write;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

/// Up to this size a body is compressed on the worker (a list page takes tens of
/// microseconds); a larger one on the blocking pool, so the worker's other requests go on.
const IN_PLACE_BYTES: usize = 256 * 1024;

pub async fn in_place<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, Bytes>>, actix_web::Error> {
    let wanted = accepts_gzip(req.headers());
    let response = next.call(req).await?;
    if !wanted
        || response.headers().contains_key(header::CONTENT_ENCODING)
        || !compressible(response.headers())
    {
        return Ok(response.map_into_left_body());
    }
    let (request, response) = response.into_parts();
    let (mut response, body) = response.into_parts();
    let bytes = match body.try_into_bytes() {
        Ok(bytes) => bytes,
        Err(stream) => {
            let response = response.set_body(stream);
            return Ok(ServiceResponse::new(request, response).map_into_left_body());
        }
    };
    let compressed = if bytes.len() <= IN_PLACE_BYTES {
        gzip(&bytes)
    } else {
        let whole = bytes.clone();
        actix_web::web::block(move || gzip(&whole))
            .await
            .ok()
            .flatten()
    };
    let body = match compressed {
        Some(compressed) => {
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
            headers.remove(header::CONTENT_LENGTH);
            compressed
        }
        None => bytes,
    };
    let response = response.set_body(body);
    Ok(ServiceResponse::new(request, response).map_into_right_body())
}

fn gzip(bytes: &[u8]) -> Option<Bytes> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a weight above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let weight = parts
                .find_map(|param| param.strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
            (coding.eq_ignore_ascii_case("gzip") || coding == "*")
                && weight.is_some_and(|weight| weight > 0.0)
        })
}

/// Text and JSON; not images, audio, PDFs or archives, which are compressed already.
fn compressible(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/javascript"
        || essence == "image/svg+xml"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn gzip_is_accepted_as_clients_say() {
        let accepts = |value| accepts_gzip(&with(header::ACCEPT_ENCODING, value));
        assert!(accepts("gzip"));
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn only_text_and_json_are_compressed() {
        let compresses = |value| compressible(&with(header::CONTENT_TYPE, value));
        assert!(compresses("application/json"));
        assert!(compresses("application/problem+json"));
        assert!(compresses("text/csv; charset=utf-8"));
        assert!(!compresses("image/png"));
        assert!(!compresses("application/pdf"));
        assert!(!compressible(&HeaderMap::new()));
    }

    #[test]
    fn what_is_compressed_comes_back_whole() {
        let text = "{\"items\":[".to_string() + &"{\"id\":1,\"name\":\"Ana\"},".repeat(200) + "]}";
        let packed = gzip(text.as_bytes()).unwrap();
        assert!(packed.len() < text.len() / 4);
        let mut unpacked = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(packed.as_ref()),
            &mut unpacked,
        )
        .unwrap();
        assert_eq!(unpacked, text);
    }
}
