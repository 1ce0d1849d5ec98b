//! `token`: an RS256 token as an identity provider would issue it.

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// PEM file of the RSA private key.
    #[arg(long)]
    private_key: std::path::PathBuf,
    /// The key's id in the JWKS file Berth reads.
    #[arg(long)]
    kid: String,
    #[arg(long)]
    issuer: String,
    #[arg(long)]
    audience: String,
    #[arg(long, default_value = "bench-user")]
    subject: String,
    /// Platform scopes, space-separated (e.g. `berth.admin`).
    #[arg(long, default_value = "")]
    scope: String,
    /// Roles, `<role>:<guid>`; repeat for several.
    #[arg(long)]
    role: Vec<String>,
}

pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let pem = std::fs::read(&args.private_key)
        .with_context(|| format!("reading {}", args.private_key.display()))?;
    let key = EncodingKey::from_rsa_pem(&pem).context("an RSA private key in PEM")?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(args.kid.clone());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "sub": args.subject,
        "iss": args.issuer,
        "aud": args.audience,
        "iat": now,
        "exp": now + 24 * 3600,
        "scope": args.scope,
        "roles": args.role,
    });
    println!("{}", jsonwebtoken::encode(&header, &claims, &key)?);
    Ok(())
}
