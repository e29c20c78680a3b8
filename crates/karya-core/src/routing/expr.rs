//! Target expressions: a small, CEL-shaped language over worker and task attributes, like
//! TaskRouter's `TargetWorkers` (`worker.skills.patent_search >= 7 && task.attr.lang in
//! worker.languages`).
//!
//! It is a deliberate subset of CEL: literals (integers, strings, booleans, lists), field
//! access on `worker.*` and `task.*`, comparisons (`== != < <= > >=`), `in` over lists, `&&`,
//! `||`, `!` and parentheses. No functions, macros or arithmetic. Every expression in this
//! subset means the same in full CEL, so stored expressions keep their meaning if the engine
//! is swapped later. Expressions are parsed once, when the requirement is set, and evaluated
//! many times; evaluation allocates only when it reads list attributes.

use std::fmt;

/// Longest expression accepted, in bytes: targets are one line, and the parser recurses.
pub const EXPR_BYTES_MAX: usize = 2_000;
/// Deepest nesting accepted, so a hostile expression cannot exhaust the stack.
pub const EXPR_DEPTH_MAX: usize = 32;

/// A value an expression computes with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Int(i64),
    Str(String),
    Bool(bool),
    List(Vec<Value>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::List(_) => "list",
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    Literal(Value),
    /// A dotted path such as `worker.skills.tax`, stored without the dots.
    Field(Vec<String>),
    List(Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

/// An expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target expression: {message} at byte {at}")]
pub struct ParseError {
    pub message: String,
    pub at: usize,
}

/// An expression that parses but cannot be evaluated for these attributes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("unknown field {0}")]
    UnknownField(String),
    #[error("cannot compare {left} with {right}")]
    TypeMismatch {
        left: &'static str,
        right: &'static str,
    },
    #[error("expression yields {0}, not bool")]
    NotBool(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Str(s) => write!(f, "'{s}'"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Prints the expression back as text that parses to the same expression (fully
/// parenthesised, so the result never depends on precedence).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(v) => write!(f, "{v}"),
            Expr::Field(path) => f.write_str(&path.join(".")),
            Expr::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Expr::Not(inner) => write!(f, "!({inner})"),
            Expr::And(a, b) => write!(f, "({a} && {b})"),
            Expr::Or(a, b) => write!(f, "({a} || {b})"),
            Expr::Compare(op, a, b) => {
                let op = match op {
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::In => "in",
                };
                write!(f, "{a} {op} {b}")
            }
        }
    }
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    if text.len() > EXPR_BYTES_MAX {
        return Err(ParseError {
            message: format!("longer than {EXPR_BYTES_MAX} bytes"),
            at: EXPR_BYTES_MAX,
        });
    }
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some((at, token)) => Err(ParseError {
            message: format!("unexpected {token}"),
            at,
        }),
    }
}

/// Evaluates an expression to a boolean; `field` resolves dotted paths to values.
pub fn eval_bool(
    expr: &Expr,
    field: &dyn Fn(&[String]) -> Option<Value>,
) -> Result<bool, EvalError> {
    match eval(expr, field)? {
        Value::Bool(b) => Ok(b),
        other => Err(EvalError::NotBool(other.type_name())),
    }
}

fn eval(expr: &Expr, field: &dyn Fn(&[String]) -> Option<Value>) -> Result<Value, EvalError> {
    Ok(match expr {
        Expr::Literal(v) => v.clone(),
        Expr::Field(path) => field(path).ok_or_else(|| EvalError::UnknownField(path.join(".")))?,
        Expr::List(items) => Value::List(
            items
                .iter()
                .map(|e| eval(e, field))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Value::Bool(!eval_bool(inner, field)?),
        // Short-circuit, as CEL does for the common case.
        Expr::And(a, b) => Value::Bool(eval_bool(a, field)? && eval_bool(b, field)?),
        Expr::Or(a, b) => Value::Bool(eval_bool(a, field)? || eval_bool(b, field)?),
        Expr::Compare(op, a, b) => {
            let (a, b) = (eval(a, field)?, eval(b, field)?);
            Value::Bool(compare(*op, &a, &b)?)
        }
    })
}

fn compare(op: CompareOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    let mismatch = || EvalError::TypeMismatch {
        left: a.type_name(),
        right: b.type_name(),
    };
    if op == CompareOp::In {
        return match b {
            Value::List(items) => Ok(items.contains(a)),
            _ => Err(mismatch()),
        };
    }
    let ordering = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => x.cmp(y),
        (Value::List(x), Value::List(y)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            return Ok((x == y) == (op == CompareOp::Eq))
        }
        _ => return Err(mismatch()),
    };
    Ok(match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
        CompareOp::In => unreachable!("handled above"),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Int(i64),
    Str(String),
    Ident(String),
    Punct(&'static str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Int(n) => write!(f, "number {n}"),
            Token::Str(s) => write!(f, "string {s:?}"),
            Token::Ident(s) => write!(f, "name {s}"),
            Token::Punct(p) => write!(f, "{p:?}"),
        }
    }
}

/// Operators, longest first so that `<=` wins over `<`.
const PUNCTS: [&str; 15] = [
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "[", "]", ",", ".",
];

fn lex(text: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let n = text[start..i].parse().map_err(|_| ParseError {
                message: "number out of range".into(),
                at: start,
            })?;
            tokens.push((start, Token::Int(n)));
        } else if c == b'"' || c == b'\'' {
            let start = i;
            i += 1;
            let body_start = i;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' {
                    return Err(ParseError {
                        message: "escapes in strings are not supported".into(),
                        at: i,
                    });
                }
                i += 1;
            }
            if i == bytes.len() {
                return Err(ParseError {
                    message: "unterminated string".into(),
                    at: start,
                });
            }
            tokens.push((start, Token::Str(text[body_start..i].to_string())));
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            tokens.push((start, Token::Ident(text[start..i].to_string())));
        } else {
            let rest = &text[i..];
            let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
                return Err(ParseError {
                    message: format!(
                        "unexpected character {:?}",
                        rest.chars().next().unwrap_or('?')
                    ),
                    at: i,
                });
            };
            tokens.push((i, Token::Punct(p)));
            i += p.len();
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.pos).map(|(at, t)| (*at, t))
    }

    fn end_offset(&self) -> usize {
        self.tokens.last().map_or(0, |(at, _)| *at + 1)
    }

    fn eat(&mut self, punct: &str) -> bool {
        match self.peek() {
            Some((_, Token::Punct(p))) if *p == punct => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), ParseError> {
        if self.eat(punct) {
            return Ok(());
        }
        let at = self.peek().map_or(self.end_offset(), |(at, _)| at);
        Err(ParseError {
            message: format!("expected {punct:?}"),
            at,
        })
    }

    fn nest(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > EXPR_DEPTH_MAX {
            let at = self.peek().map_or(self.end_offset(), |(at, _)| at);
            return Err(ParseError {
                message: format!("nested deeper than {EXPR_DEPTH_MAX}"),
                at,
            });
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.nest()?;
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat("!") {
            self.nest()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.primary()?;
        let op = match self.peek() {
            Some((_, Token::Punct("=="))) => CompareOp::Eq,
            Some((_, Token::Punct("!="))) => CompareOp::Ne,
            Some((_, Token::Punct("<"))) => CompareOp::Lt,
            Some((_, Token::Punct("<="))) => CompareOp::Le,
            Some((_, Token::Punct(">"))) => CompareOp::Gt,
            Some((_, Token::Punct(">="))) => CompareOp::Ge,
            Some((_, Token::Ident(name))) if name == "in" => CompareOp::In,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.primary()?;
        Ok(Expr::Compare(op, Box::new(left), Box::new(right)))
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let Some((at, token)) = self.peek() else {
            return Err(ParseError {
                message: "unexpected end".into(),
                at: self.end_offset(),
            });
        };
        let token = token.clone();
        self.pos += 1;
        match token {
            Token::Int(n) => Ok(Expr::Literal(Value::Int(n))),
            Token::Str(s) => Ok(Expr::Literal(Value::Str(s))),
            Token::Ident(name) if name == "true" => Ok(Expr::Literal(Value::Bool(true))),
            Token::Ident(name) if name == "false" => Ok(Expr::Literal(Value::Bool(false))),
            Token::Ident(name) if name == "worker" || name == "task" => {
                let mut path = vec![name];
                while self.eat(".") {
                    match self.peek() {
                        Some((_, Token::Ident(part))) => {
                            path.push(part.clone());
                            self.pos += 1;
                        }
                        _ => {
                            return Err(ParseError {
                                message: "expected a field name after '.'".into(),
                                at: self.peek().map_or(self.end_offset(), |(at, _)| at),
                            })
                        }
                    }
                }
                Ok(Expr::Field(path))
            }
            Token::Ident(name) => Err(ParseError {
                message: format!("unknown name {name}: fields start with worker. or task."),
                at,
            }),
            Token::Punct("(") => {
                let inner = self.or()?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Punct("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.or()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            other => Err(ParseError {
                message: format!("unexpected {other}"),
                at,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(path: &[String]) -> Option<Value> {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        Some(match path.as_slice() {
            ["worker", "skills", "tax"] => Value::Int(7),
            ["worker", "designation"] => Value::Str("team_lead".into()),
            ["worker", "languages"] => {
                Value::List(vec![Value::Str("en".into()), Value::Str("hi".into())])
            }
            ["task", "attr", "lang"] => Value::Str("hi".into()),
            ["task", "urgent"] => Value::Bool(true),
            _ => return None,
        })
    }

    /// `(expression, expected result or error text)`.
    fn check(text: &str, expect: &str) {
        let got = match parse(text) {
            Err(err) => err.to_string(),
            Ok(expr) => match eval_bool(&expr, &fields) {
                // Printing and parsing again gives the same expression.
                _ if parse(&expr.to_string()).as_ref() != Ok(&expr) => {
                    format!("does not round-trip: {expr}")
                }
                Ok(b) => b.to_string(),
                Err(err) => err.to_string(),
            },
        };
        assert_eq!(got, expect, "{text}");
    }

    #[test]
    fn expressions_evaluate_like_cel() {
        check("worker.skills.tax >= 7", "true");
        check("worker.skills.tax > 7", "false");
        check("task.attr.lang in worker.languages", "true");
        check("'de' in worker.languages", "false");
        check(
            "worker.designation in ['team_lead', 'manager'] && task.urgent",
            "true",
        );
        check("!(worker.skills.tax < 5) || false", "true");
        check("task.urgent == true && worker.skills.tax != 7", "false");
        check("1 < 2 && \"a\" < \"b\"", "true");
        check("false || false || true", "true");
        check("[1, 2] == [1, 2]", "true");
    }

    #[test]
    fn errors_are_named() {
        check("worker.skills.law >= 1", "unknown field worker.skills.law");
        check("worker.skills.tax == 'x'", "cannot compare int with string");
        check("worker.skills.tax", "expression yields int, not bool");
        check(
            "worker.skills.tax >=",
            "target expression: unexpected end at byte 19",
        );
        check(
            "tax > 1",
            "target expression: unknown name tax: fields start with worker. or task. at byte 0",
        );
        check("(1 < 2", "target expression: expected \")\" at byte 6");
        check("'open", "target expression: unterminated string at byte 0");
        check("1 < 2 )", "target expression: unexpected \")\" at byte 6");
        check(
            "1 # 2",
            "target expression: unexpected character '#' at byte 2",
        );
        let deep = format!("{}true{}", "(".repeat(40), ")".repeat(40));
        check(&deep, "target expression: nested deeper than 32 at byte 32");
    }
}
