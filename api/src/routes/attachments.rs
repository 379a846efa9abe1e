//! Attachments: upload before sending, download like the conversation or chat they belong to.

use actix_multipart::Multipart;
use actix_web::http::header::{
    CONTENT_TYPE, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{HttpResponse, get, post, web};
use futures_util::TryStreamExt;
use openapi::{Attachment, AttachmentLinkQuery, Problem, UploadForm};

use crate::auth::Caller;
use crate::db;
use crate::error::ApiError;
use crate::service::attachments;
use crate::state::AppState;
use crate::storage::Storage;

/// Uploads a file to attach to a message (`attachment_ids`). Its type is sniffed from its
/// bytes: images (JPEG, PNG, GIF), PDF, vCard, audio, video.
#[utoipa::path(
    tag = "attachments",
    operation_id = "upload_attachment",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Attachment),
        (status = 400, description = "No `file` part", body = Problem),
        (status = 413, description = "`payload_too_large`", body = Problem),
        (status = 415, description = "`unsupported_attachment`: not an allowed type, or not what it claims", body = Problem),
    )
)]
#[post("/v1/attachments")]
pub async fn upload_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    mut form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let mut file = None;
    while let Some(field) = form.try_next().await.map_err(bad_multipart)? {
        if field.name() != Some("file") || file.is_some() {
            drain(field).await?;
            continue;
        }
        file = Some(store_part(&state, actor.org_id, field).await?);
    }
    let file = file.ok_or_else(|| {
        ApiError::BadRequest("send the file in a multipart part named `file`".into())
    })?;
    let key = file.key.clone();
    let recorded = db::write(&state.store, move |conn| {
        attachments::record(conn, actor.org_id, Some(actor.user_id), None, &file)
    })
    .await;
    match recorded {
        Ok(stored) => Ok(HttpResponse::Created().json(attachments::present(&stored))),
        Err(error) => {
            // Not recorded: the bytes are nobody's.
            state.storage.remove(&key).await;
            Err(error)
        }
    }
}

pub(crate) fn bad_multipart(error: actix_multipart::MultipartError) -> ApiError {
    ApiError::BadRequest(format!("invalid multipart body: {error}"))
}

/// Reads a part we do not use to its end.
pub(crate) async fn drain(mut field: actix_multipart::Field) -> Result<(), ApiError> {
    while field.try_next().await.map_err(bad_multipart)?.is_some() {}
    Ok(())
}

/// Bytes enough to tell a file's type (see `domain::attachments::sniff`).
const SNIFF_BYTES: usize = 512;

/// Streams the `file` part to storage as it arrives: its first bytes are checked before
/// anything is written, and a part that fails (too large, a broken body, storage away)
/// leaves nothing behind.
pub(crate) async fn store_part(
    state: &AppState,
    org: domain::OrgId,
    mut field: actix_multipart::Field,
) -> Result<attachments::StoredFile, ApiError> {
    let limit = state.config.max_upload;
    let declared = field
        .content_type()
        .map(|mime| mime.essence_str().to_string());
    let filename = field
        .content_disposition()
        .and_then(|disposition| disposition.get_filename())
        .unwrap_or("file")
        .to_string();
    // The head, to sniff; then the rest, chunk by chunk.
    let mut head = web::BytesMut::new();
    let mut ended = false;
    while head.len() < SNIFF_BYTES {
        match field.try_next().await.map_err(bad_multipart)? {
            Some(chunk) => {
                if head.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge);
                }
                head.extend_from_slice(&chunk);
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    let sniffed = attachments::check_upload(&head, declared.as_deref())?;
    let key = Storage::new_key(org);
    let mut upload = state.storage.upload(&key, limit).await?;
    let written: Result<(), ApiError> = async {
        upload.write(head.freeze()).await?;
        if !ended {
            while let Some(chunk) = field.try_next().await.map_err(bad_multipart)? {
                upload.write(chunk).await?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(error) = written {
        upload.abort().await;
        if matches!(error, ApiError::PayloadTooLarge) {
            // The client is still sending; read the rest so the answer reaches it.
            let _ = drain(field).await;
        }
        return Err(error);
    }
    let size = upload.finish().await?;
    Ok(attachments::StoredFile {
        sniffed,
        size,
        filename,
        key,
    })
}

/// The file's bytes, for whoever may see the conversation it was sent in, the members of the
/// chat it was sent in, or (before it is sent) its uploader.
#[utoipa::path(
    tag = "attachments",
    operation_id = "download_attachment",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "The bytes, with their content type", content_type = "*/*", body = String), (status = 404, body = Problem))
)]
#[get("/v1/attachments/{id}")]
pub async fn download_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (actor, id) = (caller.actor(), path.into_inner());
    let item = db::read(&state.store, move |conn| {
        attachments::readable(conn, &actor, id)
    })
    .await?;
    file_response(&state, item).await
}

/// A file of an outbound message, for the channel provider that delivers it: no bearer
/// token, the link's signature is the authorization (see `OutboundDelivery`). A link that
/// this server did not sign, or that names another file or time, is unknown (404); a genuine
/// one past its `expires` is refused (403).
#[utoipa::path(
    tag = "attachments",
    operation_id = "download_linked_attachment",
    params(("id" = i64, Path), AttachmentLinkQuery),
    responses(
        (status = 200, description = "The bytes, with their content type", content_type = "*/*", body = String),
        (status = 400, description = "`bad_request`: `expires` or `signature` missing", body = Problem),
        (status = 403, description = "`forbidden`: the link has expired", body = Problem),
        (status = 404, description = "`not_found`: a bad signature, or no such file sent to a customer", body = Problem),
    )
)]
#[get("/v1/public/attachments/{id}")]
pub async fn download_linked_attachment(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<AttachmentLinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    // Checked before the database is asked: a forged link costs one HMAC.
    state
        .links
        .check(id, query.expires, &query.signature, chrono::Utc::now())?;
    let item = db::read(&state.store, move |conn| attachments::linked(conn, id)).await?;
    file_response(&state, item).await
}

/// The stored file as a download.
async fn file_response(
    state: &AppState,
    item: persistence::repo::attachments::Attachment,
) -> Result<HttpResponse, ApiError> {
    let bytes = state.storage.read(&item.storage_key).await?;
    let size = u64::try_from(item.size).unwrap_or_default();
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, item.content_type))
        .insert_header(disposition(&item.filename))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .no_chunking(size)
        .streaming(bytes))
}

/// `attachment` with the stored name: a plain ASCII `filename` every client reads, and the
/// exact name as `filename*` (RFC 6266) when it is not ASCII. Raw UTF-8 in `filename` would
/// reach browsers' `fetch` as Latin-1 mojibake.
fn disposition(filename: &str) -> ContentDisposition {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut parameters = vec![DispositionParam::Filename(fallback)];
    if !filename.is_ascii() {
        parameters.push(DispositionParam::FilenameExt(ExtendedValue {
            charset: Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: filename.as_bytes().to_vec(),
        }));
    }
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters,
    }
}
