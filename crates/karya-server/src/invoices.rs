//! Invoices over HTTP, and their three renderings (JSON, CSV, a printable HTML page), which the
//! `karya invoice` command shares. Every line that bills work names its work item; SLA credits
//! list the late items they were computed from, and accuracy credits the checks, defects and
//! Wilson interval theirs were.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::civil::Date;
use jiff::Timestamp;
use karya_core::billing::{AccuracyCredit, Invoice};
use karya_core::id::ClientId;
use karya_core::model::Client;
use karya_core::money::Money;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Path, Query};
use crate::{ApiResult, AppState};

/// An invoice rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceFormat {
    Json,
    Csv,
    Html,
}

impl InvoiceFormat {
    pub fn parse(text: &str) -> Option<InvoiceFormat> {
        match text {
            "json" => Some(InvoiceFormat::Json),
            "csv" => Some(InvoiceFormat::Csv),
            "html" => Some(InvoiceFormat::Html),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            InvoiceFormat::Json => "application/json",
            InvoiceFormat::Csv => "text/csv; charset=utf-8",
            InvoiceFormat::Html => "text/html; charset=utf-8",
        }
    }
}

/// A billing period: one calendar month in UTC, `YYYY-MM`; returns `[start, end)`.
pub fn month_period(text: &str) -> Result<(Timestamp, Timestamp), String> {
    let bad = || format!("period {text:?} is not a month such as 2026-11");
    let (year, month) = text.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let year: i16 = year.parse().map_err(|_| bad())?;
    let month: i8 = month.parse().map_err(|_| bad())?;
    let first = Date::new(year, month, 1).map_err(|_| bad())?;
    let next = first.last_of_month().tomorrow().map_err(|_| bad())?;
    let utc = |d: Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|_| bad())
    };
    Ok((utc(first)?, utc(next)?))
}

/// Renders an invoice in the chosen format.
pub fn render(client: &Client, period: &str, invoice: &Invoice, format: InvoiceFormat) -> String {
    match format {
        InvoiceFormat::Json => {
            serde_json::to_string_pretty(&invoice_json(client, period, invoice)).expect("json")
        }
        InvoiceFormat::Csv => invoice_csv(invoice),
        InvoiceFormat::Html => invoice_html(client, period, invoice),
    }
}

fn money_json(money: Money) -> Value {
    json!({"minor": money.minor, "currency": money.currency.as_str(), "text": money.to_string()})
}

fn milli(quantity: i64) -> String {
    let sign = if quantity < 0 { "-" } else { "" };
    let abs = quantity.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

pub fn invoice_json(client: &Client, period: &str, invoice: &Invoice) -> Value {
    json!({
        "client_id": client.id.to_string(),
        "client_name": client.name,
        "period": period,
        "currency": invoice.currency.as_str(),
        "lines": invoice.lines.iter().map(|line| json!({
            "engagement_id": line.engagement_id.to_string(),
            "work_item_id": line.work_item_id.map(|id| id.to_string()),
            "description": line.description,
            "quantity": milli(line.quantity_milli),
            "unit_price": money_json(line.unit_price),
            "amount": money_json(line.amount),
        })).collect::<Vec<_>>(),
        "sla_credits": invoice.credits.iter().map(|credit| json!({
            "engagement_id": credit.engagement_id.to_string(),
            "items_measured": credit.items_measured,
            "items_on_time": credit.items_on_time,
            "target_bp": credit.target_bp,
            "achieved_bp": credit.achieved_bp,
            "credit_bp": credit.credit_bp,
            "fees": money_json(credit.fees),
            "amount": money_json(credit.amount),
            "evidence": credit.evidence.iter().map(|e| json!({
                "work_item_id": e.work_item_id.to_string(),
                "due_at": e.due_at.map(|t| t.to_string()),
                "delivered_at": e.delivered_at.to_string(),
                "late_by_seconds": e.late_by.as_secs(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "accuracy_credits": invoice.accuracy_credits.iter().map(|credit| json!({
            "engagement_id": credit.engagement_id.to_string(),
            "target_bp": credit.target_bp,
            "checks": credit.checks,
            "correct": credit.correct,
            "defects": credit.defects,
            "achieved_bp": credit.achieved_bp,
            "confidence_ppm": credit.confidence_ppm,
            "interval_low_bp": credit.interval_low_bp,
            "interval_high_bp": credit.interval_high_bp,
            "points_short_bp": credit.points_short_bp,
            "credit_bp": credit.credit_bp,
            "fees": money_json(credit.fees),
            "amount": money_json(credit.amount),
        })).collect::<Vec<_>>(),
        "subtotal": money_json(invoice.subtotal),
        "total": money_json(invoice.total),
    })
}

/// One accuracy credit in a sentence, with all its evidence.
pub fn accuracy_credit_text(credit: &AccuracyCredit) -> String {
    format!(
        "accuracy {} of {} checks right ({} bp, {} defects), {}% interval {}-{} bp against a \
         target of {} bp: {} bp short beyond doubt, credit {} bp",
        credit.correct,
        credit.checks,
        credit.achieved_bp,
        credit.defects,
        credit.confidence_ppm / 10_000,
        credit.interval_low_bp,
        credit.interval_high_bp,
        credit.target_bp,
        credit.points_short_bp,
        credit.credit_bp,
    )
}

/// Quotes a CSV field when it holds a separator, a quote or a line break; a leading formula
/// character is neutralised so a spreadsheet does not evaluate client-supplied text.
fn csv_field(text: &str) -> String {
    let text = match text.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{text}"),
        _ => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn decimal(money: Money) -> String {
    // Display is "123.45 INR"; the currency has its own column.
    money
        .to_string()
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn invoice_csv(invoice: &Invoice) -> String {
    let mut out = String::from(
        "kind,engagement_id,work_item_id,description,quantity,unit_price,amount,currency\n",
    );
    let currency = invoice.currency.as_str();
    for line in &invoice.lines {
        let _ = writeln!(
            out,
            "line,{},{},{},{},{},{},{currency}",
            line.engagement_id,
            line.work_item_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            csv_field(&line.description),
            milli(line.quantity_milli),
            decimal(line.unit_price),
            decimal(line.amount),
        );
    }
    for credit in &invoice.credits {
        let _ = writeln!(
            out,
            "sla_credit,{},,{},,,{},{currency}",
            credit.engagement_id,
            csv_field(&format!(
                "on time {} bp against {} bp target: {} bp credit",
                credit.achieved_bp, credit.target_bp, credit.credit_bp
            )),
            decimal(credit.amount),
        );
        for evidence in &credit.evidence {
            let _ = writeln!(
                out,
                "sla_evidence,{},{},{},,,,{currency}",
                credit.engagement_id,
                evidence.work_item_id,
                csv_field(&format!(
                    "late by {} business seconds",
                    evidence.late_by.as_secs()
                )),
            );
        }
    }
    for credit in &invoice.accuracy_credits {
        let _ = writeln!(
            out,
            "accuracy_credit,{},,{},,,{},{currency}",
            credit.engagement_id,
            csv_field(&accuracy_credit_text(credit)),
            decimal(credit.amount),
        );
    }
    let _ = writeln!(
        out,
        "subtotal,,,,,,{},{currency}",
        decimal(invoice.subtotal)
    );
    let _ = writeln!(out, "total,,,,,,{},{currency}", decimal(invoice.total));
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn invoice_html(client: &Client, period: &str, invoice: &Invoice) -> String {
    let mut out = String::new();
    let title = format!("Invoice {} {}", client.name, period);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border-bottom:1px solid #ccc;padding:4px;text-align:left}}td.n{{text-align:right}}\
         @media print{{a{{color:inherit}}}}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<p>Client {} &middot; period {} &middot; currency {}</p>",
        escape(&client.id.to_string()),
        escape(period),
        invoice.currency
    );
    out.push_str("<table><thead><tr><th>Work item</th><th>Description</th><th>Quantity</th><th>Unit price</th><th>Amount</th></tr></thead><tbody>\n");
    for line in &invoice.lines {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            line.work_item_id.map(|id| id.to_string()).unwrap_or_default(),
            escape(&line.description),
            milli(line.quantity_milli),
            escape(&line.unit_price.to_string()),
            escape(&line.amount.to_string()),
        );
    }
    let _ = writeln!(
        out,
        "</tbody><tfoot><tr><th colspan=\"4\">Subtotal</th><td class=\"n\">{}</td></tr></tfoot></table>",
        escape(&invoice.subtotal.to_string())
    );
    for credit in &invoice.credits {
        let _ = writeln!(
            out,
            "<h2>SLA credit</h2>\n<p>{} of {} items on time ({} bp) against a target of {} bp: \
             credit of {} bp of {} = <strong>{}</strong>.</p>",
            credit.items_on_time,
            credit.items_measured,
            credit.achieved_bp,
            credit.target_bp,
            credit.credit_bp,
            escape(&credit.fees.to_string()),
            escape(&credit.amount.to_string()),
        );
        out.push_str("<table><thead><tr><th>Late work item</th><th>Due</th><th>Delivered</th><th>Late by (business minutes)</th></tr></thead><tbody>\n");
        for e in &credit.evidence {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                e.work_item_id,
                e.due_at.map(|t| t.to_string()).unwrap_or_default(),
                e.delivered_at,
                e.late_by.as_mins(),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    for credit in &invoice.accuracy_credits {
        let _ = writeln!(
            out,
            "<h2>Accuracy credit</h2>\n<p>{} of {} checked pieces of work were right ({} bp; {} defects \
             recorded). At {}% confidence the Wilson interval is {} to {} bp; its upper bound lies \
             {} bp below the target of {} bp: credit of {} bp of {} = <strong>{}</strong>.</p>",
            credit.correct,
            credit.checks,
            credit.achieved_bp,
            credit.defects,
            credit.confidence_ppm / 10_000,
            credit.interval_low_bp,
            credit.interval_high_bp,
            credit.points_short_bp,
            credit.target_bp,
            credit.credit_bp,
            escape(&credit.fees.to_string()),
            escape(&credit.amount.to_string()),
        );
    }
    let _ = writeln!(
        out,
        "<h2>Total due: {}</h2>\n</body></html>",
        escape(&invoice.total.to_string())
    );
    out
}

pub fn api() -> Api {
    Api::new().route(
        "/api/v1/clients/{client_id}/invoices/{period}",
        get(get_invoice),
        &[(
            Method::GET,
            Access::tenant(auth::BILLING_READ, auth::CLIENT_ADMIN),
        )],
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceQuery {
    format: Option<String>,
}

async fn get_invoice(
    State(state): State<AppState>,
    Path((client_id, period)): Path<(String, String)>,
    Query(query): Query<InvoiceQuery>,
) -> ApiResult<Response> {
    let client_id: ClientId = parse_id(&client_id)?;
    let (from, to) =
        month_period(&period).map_err(|msg| ApiError::new(ErrorCode::InvalidParameter, msg))?;
    let format_text = query.format.as_deref().unwrap_or("json");
    let format = InvoiceFormat::parse(format_text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("format {format_text:?} unknown: use json, csv or html"),
        )
    })?;
    let client = state.store.client(client_id).await?;
    let invoice = state.store.tenant(client_id).invoice(from, to).await?;
    let body = render(&client, &period, &invoice, format);
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_months() {
        let (from, to) = month_period("2026-11").unwrap();
        assert_eq!(from.to_string(), "2026-11-01T00:00:00Z");
        assert_eq!(to.to_string(), "2026-12-01T00:00:00Z");
        let (_, to) = month_period("2026-12").unwrap();
        assert_eq!(to.to_string(), "2027-01-01T00:00:00Z");
        for bad in ["2026-13", "2026-1", "26-11", "november", "2026-11-01"] {
            assert!(month_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_and_html_escape_client_text() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(escape("<b>&'\""), "&lt;b&gt;&amp;&#39;&quot;");
    }
}
