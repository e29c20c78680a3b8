//! Target expressions: CEL over the worker and the task, like TaskRouter's `TargetWorkers`
//! (`worker.skills.patent_search >= 7 && task.attr.lang in worker.languages`).
//!
//! An expression is compiled once, when the requirement is set, with the `cel` crate, and
//! checked then: it may name only `worker` and `task` (and the variables of its own macros), and
//! only the fields listed below; a mistake is refused with its byte position. It is evaluated
//! many times, once per candidate, against a fresh scope of a shared root context.
//!
//! # Fields
//! - `worker`: `id`, `site` (site id, `""` when none), `designation` (`analyst` ...
//!   `manager`), `languages` (list), `qualifications` (kinds valid at the time of the
//!   decision, list), `skills` (map of skill to level; a skill the expression names that the
//!   worker lacks reads as 0), `attr` (map of free attributes).
//! - `task`: `id`, `client`, `engagement`, `priority` (`low` ... `urgent`), `step` (the pack
//!   step, `""` when unknown), `service_line` (code, `""` when unknown), `attr` (map).
//!
//! Everything else of CEL is there: arithmetic, `size`, `has`, `exists`, string functions. An
//! expression that fails at evaluation (a missing attribute, a type mismatch) does not admit
//! the worker, and the explanation says so (`target_error`).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr as Ast};
use cel::objects::{Key, Map};

/// Longest expression accepted, in bytes: targets are one line.
pub const EXPR_BYTES_MAX: usize = 2_000;
/// Deepest nesting of brackets accepted, so a hostile expression cannot exhaust the stack.
pub const EXPR_DEPTH_MAX: usize = 32;

/// Fields of `worker` an expression may read.
pub const WORKER_FIELDS: [&str; 7] = [
    "id",
    "site",
    "designation",
    "languages",
    "qualifications",
    "skills",
    "attr",
];
/// Fields of `task` an expression may read.
pub const TASK_FIELDS: [&str; 7] = [
    "id",
    "client",
    "engagement",
    "priority",
    "step",
    "service_line",
    "attr",
];

/// A compiled target expression. Two expressions are equal when their text is: the text is
/// what is stored, and it compiles to the same program.
#[derive(Clone)]
pub struct Expr {
    text: Arc<str>,
    program: Arc<cel::Program>,
    /// Skills named as `worker.skills.<name>`: read as 0 when the worker lacks them.
    skills: Arc<[String]>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", &*self.text)
    }
}

/// The text as written (and stored).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.text == other.text
    }
}

impl Eq for Expr {}

impl Hash for Expr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// An expression that is refused at registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target expression: {message} at byte {at}")]
pub struct ParseError {
    pub message: String,
    /// Byte offset into the text.
    pub at: usize,
}

/// An expression that compiles but cannot be evaluated for this worker and task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Execution(String),
    #[error("expression yields {0}, not bool")]
    NotBool(String),
}

/// The facts about a worker an expression reads, in plain data.
#[derive(Debug, Clone, Copy)]
pub struct WorkerFacts<'a> {
    pub id: &'a str,
    pub site: &'a str,
    pub designation: &'a str,
    pub languages: &'a [String],
    /// Kinds of the qualifications valid now.
    pub qualifications: &'a [&'a str],
    pub skills: &'a [(&'a str, u8)],
    pub attributes: &'a [(String, String)],
}

/// The facts about a task an expression reads.
#[derive(Debug, Clone, Copy)]
pub struct TaskFacts<'a> {
    pub id: &'a str,
    pub client: &'a str,
    pub engagement: &'a str,
    pub priority: &'a str,
    pub step: &'a str,
    pub service_line: &'a str,
    pub attributes: &'a [(String, String)],
}

fn err(message: impl Into<String>, at: usize) -> ParseError {
    ParseError {
        message: message.into(),
        at,
    }
}

/// Compiles and checks an expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    if text.len() > EXPR_BYTES_MAX {
        return Err(err(
            format!("longer than {EXPR_BYTES_MAX} bytes"),
            EXPR_BYTES_MAX,
        ));
    }
    check_depth(text)?;
    let program = cel::Program::compile(text).map_err(|errors| {
        let first = errors.errors.first();
        let message = first.map_or_else(|| "does not parse".to_string(), |e| e.msg.clone());
        let at = first.map_or(0, |e| byte_offset(text, e.pos.0, e.pos.1));
        err(message, at)
    })?;
    let mut checker = Checker {
        offsets: program.source_info(),
        bound: Vec::new(),
        skills: Vec::new(),
    };
    checker.walk(program.expression())?;
    let mut skills = checker.skills;
    skills.sort();
    skills.dedup();
    Ok(Expr {
        text: text.into(),
        program: Arc::new(program),
        skills: skills.into(),
    })
}

/// The byte offset of a 1-based line and column (counted in characters).
fn byte_offset(text: &str, line: isize, column: isize) -> usize {
    let mut offset = 0;
    for (idx, l) in text.split_inclusive('\n').enumerate() {
        if idx as isize + 1 == line {
            let column = column.max(1) as usize - 1;
            return offset
                + l.char_indices()
                    .nth(column)
                    .map_or(l.len(), |(byte, _)| byte);
        }
        offset += l.len();
    }
    text.len()
}

/// Refuses nesting deeper than [`EXPR_DEPTH_MAX`] before the parser sees it.
fn check_depth(text: &str) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                if depth > EXPR_DEPTH_MAX {
                    return Err(err(format!("nested deeper than {EXPR_DEPTH_MAX}"), at));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Walks the compiled expression: every name is `worker`, `task` or a macro variable in
/// scope, and every field of `worker` and `task` is known.
struct Checker<'a> {
    offsets: &'a cel::common::ast::SourceInfo,
    bound: Vec<String>,
    skills: Vec<String>,
}

impl Checker<'_> {
    fn at(&self, id: u64) -> usize {
        self.offsets
            .offset_for(id)
            .map_or(0, |(start, _)| start as usize)
    }

    fn walk(&mut self, e: &cel::IdedExpr) -> Result<(), ParseError> {
        match &e.expr {
            Ast::Unspecified | Ast::Literal(_) => Ok(()),
            Ast::Ident(name) => match name.as_str() {
                "worker" | "task" => Ok(()),
                _ if self.bound.iter().any(|b| b == name) => Ok(()),
                _ => Err(err(
                    format!("unknown name {name}: fields start with worker. or task."),
                    self.at(e.id),
                )),
            },
            Ast::Select(select) => {
                if let Some(path) = self.path(e) {
                    return self.check_path(&path);
                }
                self.walk(&select.operand)
            }
            Ast::Call(call) => {
                if let Some(target) = &call.target {
                    self.walk(target)?;
                }
                call.args.iter().try_for_each(|a| self.walk(a))
            }
            Ast::List(list) => list.elements.iter().try_for_each(|a| self.walk(a)),
            Ast::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(m) => {
                    self.walk(&m.key)?;
                    self.walk(&m.value)
                }
                EntryExpr::StructField(f) => self.walk(&f.value),
            }),
            Ast::Struct(s) => Err(err(
                format!("message {} is not known here", s.type_name),
                self.at(e.id),
            )),
            Ast::Comprehension(c) => {
                self.walk(&c.iter_range)?;
                self.walk(&c.accu_init)?;
                let before = self.bound.len();
                self.bound.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    self.bound.push(v.clone());
                }
                self.bound.push(c.accu_var.clone());
                let inner = [&c.loop_cond, &c.loop_step, &c.result]
                    .into_iter()
                    .try_for_each(|a| self.walk(a));
                self.bound.truncate(before);
                inner
            }
        }
    }

    /// The dotted path `worker.a.b` an expression spells (a `has()` test included), each part
    /// with the byte where its name starts, when its root is `worker` or `task` and not
    /// shadowed by a macro variable.
    fn path(&self, e: &cel::IdedExpr) -> Option<Vec<(String, usize)>> {
        let mut parts = Vec::new();
        let mut cur = e;
        loop {
            match &cur.expr {
                Ast::Select(s) => {
                    // The select's offset is the dot before the field (for a `has()` test,
                    // the call); the field's name follows the dot.
                    let dot = self.at(cur.id);
                    let start = self.offsets.source.get(dot..).map_or(dot, |rest| {
                        rest.find(s.field.as_str()).map_or(dot, |i| dot + i)
                    });
                    parts.push((s.field.clone(), start));
                    cur = &s.operand;
                }
                Ast::Ident(name)
                    if (name == "worker" || name == "task")
                        && !self.bound.iter().any(|b| b == name) =>
                {
                    parts.push((name.clone(), self.at(cur.id)));
                    parts.reverse();
                    return Some(parts);
                }
                _ => return None,
            }
        }
    }

    fn check_path(&mut self, parts: &[(String, usize)]) -> Result<(), ParseError> {
        let path: Vec<&str> = parts.iter().map(|(p, _)| p.as_str()).collect();
        let at = |i: usize| parts[i].1;
        if path.len() < 2 {
            return Ok(());
        }
        let known: &[&str] = match path[0] {
            "worker" => &WORKER_FIELDS,
            _ => &TASK_FIELDS,
        };
        if !known.contains(&path[1]) {
            return Err(err(
                format!(
                    "unknown field {}.{}: use one of {}",
                    path[0],
                    path[1],
                    known.join(", ")
                ),
                at(1),
            ));
        }
        let is_map = path[1] == "skills" || path[1] == "attr";
        if path.len() > 2 && !is_map {
            return Err(err(
                format!("{}.{} has no field {}", path[0], path[1], path[2]),
                at(2),
            ));
        }
        if path.len() > 3 {
            return Err(err(format!("{} has no fields", path[..3].join(".")), at(3)));
        }
        if path[0] == "worker" && path[1] == "skills" && path.len() == 3 {
            self.skills.push(path[2].to_string());
        }
        Ok(())
    }
}

thread_local! {
    /// The standard environment, built once per thread; each evaluation binds its variables
    /// in a child scope of it.
    static ROOT: cel::Context<'static, 'static> = cel::Context::default();
}

fn text(s: &str) -> cel::Value {
    cel::Value::String(Arc::new(s.to_string()))
}

fn map(entries: impl Iterator<Item = (String, cel::Value)>) -> cel::Value {
    let map: HashMap<Key, cel::Value> = entries.map(|(k, v)| (Key::from(k), v)).collect();
    cel::Value::Map(Map { map: Arc::new(map) })
}

fn attrs(attributes: &[(String, String)]) -> cel::Value {
    map(attributes.iter().map(|(k, v)| (k.clone(), text(v))))
}

impl Expr {
    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the expression for a worker and a task.
    pub fn eval(&self, worker: &WorkerFacts<'_>, task: &TaskFacts<'_>) -> Result<bool, EvalError> {
        let skills = map(worker
            .skills
            .iter()
            .map(|(name, level)| (name.to_string(), cel::Value::Int(i64::from(*level))))
            .chain(
                self.skills
                    .iter()
                    .filter(|name| !worker.skills.iter().any(|(s, _)| s == name))
                    .map(|name| (name.clone(), cel::Value::Int(0))),
            ));
        let worker_value = map([
            ("id".to_string(), text(worker.id)),
            ("site".to_string(), text(worker.site)),
            ("designation".to_string(), text(worker.designation)),
            (
                "languages".to_string(),
                cel::Value::List(Arc::new(worker.languages.iter().map(|l| text(l)).collect())),
            ),
            (
                "qualifications".to_string(),
                cel::Value::List(Arc::new(
                    worker.qualifications.iter().map(|q| text(q)).collect(),
                )),
            ),
            ("skills".to_string(), skills),
            ("attr".to_string(), attrs(worker.attributes)),
        ]
        .into_iter());
        let task_value = map([
            ("id".to_string(), text(task.id)),
            ("client".to_string(), text(task.client)),
            ("engagement".to_string(), text(task.engagement)),
            ("priority".to_string(), text(task.priority)),
            ("step".to_string(), text(task.step)),
            ("service_line".to_string(), text(task.service_line)),
            ("attr".to_string(), attrs(task.attributes)),
        ]
        .into_iter());
        ROOT.with(|root| {
            let mut scope = root.new_inner_scope();
            scope.add_variable_from_value("worker", worker_value);
            scope.add_variable_from_value("task", task_value);
            match self.program.execute(&scope) {
                Ok(cel::Value::Bool(b)) => Ok(b),
                Ok(other) => Err(EvalError::NotBool(other.type_of().to_string())),
                Err(e) => Err(EvalError::Execution(e.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker_attrs() -> Vec<(String, String)> {
        vec![("team".into(), "ip".into())]
    }

    fn task_attrs() -> Vec<(String, String)> {
        vec![("lang".into(), "hi".into()), ("pages".into(), "12".into())]
    }

    /// `(expression, expected result or error text)`, over one worker and one task.
    fn check(expression: &str, expect: &str) {
        let languages = vec!["en".to_string(), "hi".to_string()];
        let wattrs = worker_attrs();
        let tattrs = task_attrs();
        let worker = WorkerFacts {
            id: "w1",
            site: "s1",
            designation: "team_lead",
            languages: &languages,
            qualifications: &["ca", "cpa"],
            skills: &[("tax", 7), ("audit", 3)],
            attributes: &wattrs,
        };
        let task = TaskFacts {
            id: "t1",
            client: "c1",
            engagement: "e1",
            priority: "urgent",
            step: "review",
            service_line: "bookkeeping",
            attributes: &tattrs,
        };
        let got = match parse(expression) {
            Err(e) => e.to_string(),
            Ok(compiled) => {
                assert_eq!(compiled.to_string(), expression, "the text is kept");
                match compiled.eval(&worker, &task) {
                    Ok(b) => b.to_string(),
                    Err(e) => e.to_string(),
                }
            }
        };
        assert_eq!(got, expect, "{expression}");
    }

    #[test]
    fn expressions_read_the_worker_and_the_task() {
        check("worker.skills.tax >= 7", "true");
        check("worker.skills.tax > 7", "false");
        check("task.attr.lang in worker.languages", "true");
        check("'de' in worker.languages", "false");
        check(
            "worker.designation in ['team_lead', 'manager'] && task.priority == 'urgent'",
            "true",
        );
        check("!(worker.skills.tax < 5) || false", "true");
        check("worker.skills.tax != 7", "false");
        check("1 < 2 && \"a\" < \"b\"", "true");
        check("[1, 2] == [1, 2]", "true");
        // A skill the worker lacks reads as 0.
        check("worker.skills.law == 0", "true");
        check(
            "worker.skills.law >= 1 || worker.skills.audit + 4 >= 7",
            "true",
        );
        check(
            "'cpa' in worker.qualifications && size(worker.qualifications) == 2",
            "true",
        );
        check("worker.attr.team == 'ip' && worker.site == 's1'", "true");
        check("has(worker.attr.region)", "false");
        check(
            "has(worker.attr.region) && worker.attr.region == 'eu'",
            "false",
        );
        check(
            "task.step == 'review' && task.service_line == 'bookkeeping'",
            "true",
        );
        check(
            "task.client == 'c1' && task.engagement == 'e1' && task.id == 't1'",
            "true",
        );
        check("int(task.attr.pages) > 10", "true");
        check("worker.languages.exists(l, l.startsWith('h'))", "true");
        check("worker.languages.all(l, size(l) == 2)", "true");
        check(
            "'tax' in worker.skills && !('law' in worker.skills)",
            "true",
        );
    }

    #[test]
    fn evaluation_errors_are_named() {
        check("worker.attr.region == 'eu'", "No such key: region");
        check("worker.skills.tax == 'x'", "false");
        check("worker.skills.tax", "expression yields int, not bool");
        check("worker.skills.tax / 0 == 1", "Division by zero of Int(7)");
    }

    #[test]
    fn mistakes_are_refused_at_registration_with_their_position() {
        check(
            "worker.skills.tax >=",
            "target expression: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER} at byte 20",
        );
        check(
            "tax > 1",
            "target expression: unknown name tax: fields start with worker. or task. at byte 0",
        );
        check(
            "worker.skils.tax > 1",
            "target expression: unknown field worker.skils: use one of id, site, designation, languages, qualifications, skills, attr at byte 7",
        );
        check(
            "task.urgent",
            "target expression: unknown field task.urgent: use one of id, client, engagement, priority, step, service_line, attr at byte 5",
        );
        check(
            "worker.site.name == 'x'",
            "target expression: worker.site has no field name at byte 12",
        );
        check(
            "worker.languages.exists(l, l == other)",
            "target expression: unknown name other: fields start with worker. or task. at byte 32",
        );
        let deep = format!("{}true{}", "(".repeat(40), ")".repeat(40));
        check(&deep, "target expression: nested deeper than 32 at byte 32");
        let long = format!("true{}", " ".repeat(EXPR_BYTES_MAX));
        check(
            &long,
            "target expression: longer than 2000 bytes at byte 2000",
        );
    }
}
