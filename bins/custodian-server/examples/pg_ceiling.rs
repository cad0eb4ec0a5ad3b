//! The ceiling `cargo xtask bench` measures Custodian's GET on PostgreSQL against: a plain
//! actix-web server whose one route selects a row by primary key through a diesel-async
//! pool of the same size as Custodian's, and answers it as JSON. No authentication, no
//! authorization, no audit: what the stack itself costs.
//!
//! `pg_ceiling <postgres-url> <bind-address> <pool-size>`; the table `ceiling_rows (id TEXT PRIMARY
//! KEY, team_id TEXT, name TEXT, body TEXT)` must exist (the bench creates and fills it).

use actix_web::{App, HttpResponse, HttpServer, web};
use diesel::sql_types::Text;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(diesel::QueryableByName, serde::Serialize)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    team_id: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    body: String,
}

async fn row(pool: web::Data<Pool<AsyncPgConnection>>, id: web::Path<String>) -> HttpResponse {
    let Ok(mut conn) = pool.get().await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let found: Result<Row, _> = diesel::sql_query("SELECT id, team_id, name, body FROM ceiling_rows WHERE id = $1")
        .bind::<Text, _>(id.into_inner())
        .get_result(&mut conn)
        .await;
    match found {
        Ok(row) => HttpResponse::Ok().json(row),
        Err(diesel::result::Error::NotFound) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(bind), Some(Ok(pool_size))) = (args.next(), args.next(), args.next().map(|n| n.parse()))
    else {
        eprintln!("usage: pg_ceiling <postgres-url> <bind-address> <pool-size>");
        std::process::exit(2);
    };
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    let pool = Pool::builder(manager)
        .max_size(pool_size)
        .build()
        .map_err(std::io::Error::other)?;
    let pool = web::Data::new(pool);
    HttpServer::new(move || {
        App::new()
            .app_data(pool.clone())
            .route("/rows/{id}", web::get().to(row))
    })
    .bind(bind)?
    .run()
    .await
}
