//! Attachments: upload before sending, download like the conversation or chat they belong to.

use actix_multipart::Multipart;
use actix_web::http::header::{
    CONTENT_TYPE, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{HttpResponse, get, post, web};
use futures_util::TryStreamExt;
use openapi::{Attachment, AttachmentLinkQuery, Problem, UploadForm};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::attachments;
use crate::state::AppState;
use crate::{db, files};

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
    let limit = state.config.max_upload;
    let bad = |error: actix_multipart::MultipartError| {
        ApiError::BadRequest(format!("invalid multipart body: {error}"))
    };
    let mut upload = None;
    while let Some(mut field) = form.try_next().await.map_err(bad)? {
        if field.name() != Some("file") {
            // Drain parts we do not use.
            while field.try_next().await.map_err(bad)?.is_some() {}
            continue;
        }
        let declared = field
            .content_type()
            .map(|mime| mime.essence_str().to_string());
        let filename = field
            .content_disposition()
            .and_then(|disposition| disposition.get_filename())
            .unwrap_or("file")
            .to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.try_next().await.map_err(bad)? {
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        upload = Some((declared, filename, bytes));
    }
    let (declared, filename, bytes) = upload.ok_or_else(|| {
        ApiError::BadRequest("send the file in a multipart part named `file`".into())
    })?;
    let sniffed = attachments::check_upload(&bytes, declared.as_deref())?;
    let actor = caller.actor();
    let data_dir = state.config.data_dir.clone();
    let size = bytes.len();
    let key = web::block(move || files::save(&data_dir, actor.org_id, &bytes)).await??;
    let file = attachments::StoredFile {
        sniffed,
        size,
        filename,
        key,
    };
    let stored = db::write(&state.store, move |conn| {
        attachments::record(conn, actor.org_id, Some(actor.user_id), None, &file)
    })
    .await?;
    Ok(HttpResponse::Created().json(attachments::present(&stored)))
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
    let data_dir = state.config.data_dir.clone();
    let key = item.storage_key.clone();
    let bytes = web::block(move || files::load(&data_dir, &key)).await??;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, item.content_type))
        .insert_header(disposition(&item.filename))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
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
