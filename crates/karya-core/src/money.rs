//! Money as integer minor units (paise, cents) with an ISO 4217 currency code.
//!
//! Floating point never touches an amount: sums are exact, and an operation that mixes
//! currencies or overflows is an error the caller must handle.

use std::fmt;
use std::str::FromStr;

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("malformed currency {0:?}: expected three upper-case letters such as INR, USD or EUR")]
    MalformedCurrency(String),
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflows")]
    Overflow,
}

impl Currency {
    pub const INR: Currency = Currency(*b"INR");
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const GBP: Currency = Currency(*b"GBP");

    pub fn as_str(&self) -> &str {
        // Construction guarantees ASCII upper-case letters.
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }

    /// Minor units per major unit. Every currency karya bills in today has two decimals;
    /// the exceptions (JPY, KWD, ...) are listed here when a client needs them.
    pub fn minor_digits(&self) -> u32 {
        match &self.0 {
            b"JPY" | b"KRW" => 0,
            b"KWD" | b"BHD" | b"OMR" => 3,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Currency([a, b, c])),
            _ => Err(MoneyError::MalformedCurrency(
                text.chars().take(16).collect(),
            )),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of one currency, in its minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if digits == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let scale = 10u64.pow(digits);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parsing() {
        assert_eq!("INR".parse::<Currency>().unwrap(), Currency::INR);
        for bad in ["inr", "RUPEE", "", "U$D"] {
            assert!(bad.parse::<Currency>().is_err(), "{bad}");
        }
    }

    #[test]
    fn money_adds_exactly_and_refuses_mixed_currencies() {
        let a = Money::new(10_050, Currency::INR);
        let b = Money::new(-50, Currency::INR);
        assert_eq!(a.checked_add(b).unwrap().to_string(), "100.00 INR");
        assert_eq!(Money::new(-5, Currency::USD).to_string(), "-0.05 USD");
        assert!(matches!(
            a.checked_add(Money::new(1, Currency::USD)),
            Err(MoneyError::CurrencyMismatch(_, _))
        ));
        assert_eq!(
            Money::new(i64::MAX, Currency::EUR).checked_add(Money::new(1, Currency::EUR)),
            Err(MoneyError::Overflow)
        );
    }
}
