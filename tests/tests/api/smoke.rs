//! The first thing an operator does: start it, check it, sign in.

use serde_json::json;

use crate::on_both_backends;
use crate::support::{ADMIN_EMAIL, PASSWORD, TestApp};

async fn the_bootstrap_admin_signs_in_and_sees_themselves(app: TestApp) {
    let health = app
        .send(reqwest::Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    assert_eq!(health.body, json!({"status": "ok"}));
    let admin = app.login(ADMIN_EMAIL, PASSWORD).await;
    let me = app.get("/v1/me", &admin.token).await.expect(200);
    assert_eq!(me.body["email"], ADMIN_EMAIL);
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["memberships"], json!([]));
    assert_eq!(me.body["teams"], json!([]));
}

on_both_backends!(the_bootstrap_admin_signs_in_and_sees_themselves);
