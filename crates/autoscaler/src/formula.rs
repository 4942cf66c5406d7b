//! The formula stage: one number computed from the named metrics, compared with a target as an
//! Object metric is, and proposed instead of the maximum over the metrics.
//!
//! The language is small on purpose: numbers and quantities (`50`, `0.5`, `500m`, `2k`,
//! `1Gi`), metric names, `+ - * /` (also `× ÷ −`), unary minus, `min`, `max`, `abs`, `clamp`,
//! comparisons giving 1 or 0, and `condition ? a : b`. It is parsed once per spec change;
//! evaluation is a walk of the tree.

use std::fmt;

use ferroscale_api::quantity::{ParsedQuantity, to_milli};
use ferroscale_api::{Formula, MetricSpec, MetricTargetType};

use crate::calculate::{self, Context};
use crate::metric::{Activation, MetricOutcome};
use crate::types::Scale;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    /// A metric, by its index in the spec's metrics.
    Metric {
        index: usize,
        name: String,
    },
    Negate(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
    Choose(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Min,
    Max,
    Abs,
    Clamp,
}

/// A parse error: what was expected, at which character (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.column, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Symbol(&'static str),
    End,
}

struct Parser<'a> {
    tokens: Vec<(Token, usize)>,
    at: usize,
    names: &'a [Option<String>],
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let column = |i: usize| chars.get(i).map_or(text.chars().count() + 1, |_| i + 1);
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '.') {
                // An exponent's sign belongs to the number (`1e-3`).
                if matches!(chars[i].1, 'e' | 'E') && chars.get(i + 1).is_some_and(|(_, n)| matches!(n, '+' | '-')) {
                    i += 1;
                }
                i += 1;
            }
            let end = chars.get(i).map_or(text.len(), |(b, _)| *b);
            let literal = &text[chars[start].0..end];
            let value = ParsedQuantity::parse(literal).map_err(|e| ParseError {
                column: column(start),
                message: format!("{literal:?} is not a number or quantity: {e}"),
            })?;
            tokens.push((Token::Number(value.as_f64()), column(start)));
            continue;
        }
        if c.is_ascii_alphabetic() {
            // Metric names are DNS labels, so `-` continues a name: `queue-depth` is one
            // name, and a subtraction between names needs spaces (`a - b`).
            while i < chars.len() && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '-') {
                i += 1;
            }
            let end = chars.get(i).map_or(text.len(), |(b, _)| *b);
            tokens.push((Token::Name(text[chars[start].0..end].to_string()), column(start)));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().map(|(_, c)| *c).collect();
        let symbol = match two.as_str() {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "==" => Some("=="),
            "!=" => Some("!="),
            _ => None,
        };
        if let Some(s) = symbol {
            tokens.push((Token::Symbol(s), column(start)));
            i += 2;
            continue;
        }
        let symbol = match c {
            '+' => "+",
            '-' | '−' => "-",
            '*' | '×' => "*",
            '/' | '÷' => "/",
            '<' => "<",
            '>' => ">",
            '(' => "(",
            ')' => ")",
            ',' => ",",
            '?' => "?",
            ':' => ":",
            other => {
                return Err(ParseError {
                    column: column(start),
                    message: format!("unexpected character {other:?}"),
                });
            }
        };
        tokens.push((Token::Symbol(symbol), column(start)));
        i += 1;
    }
    tokens.push((Token::End, column(chars.len())));
    Ok(tokens)
}

/// How deep expressions may nest: a tenant's expression must not exhaust the operator's stack.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at].0
    }

    fn column(&self) -> usize {
        self.tokens[self.at].1
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn eat(&mut self, symbol: &str) -> bool {
        let found = matches!(self.peek(), Token::Symbol(s) if *s == symbol);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, symbol: &str) -> Result<(), ParseError> {
        if self.eat(symbol) {
            Ok(())
        } else {
            self.fail(format!("expected {symbol:?}, found {}", describe(self.peek())))
        }
    }

    fn choose(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return self.fail(format!("the expression nests deeper than {MAX_DEPTH} levels"));
        }
        let condition = self.compare(depth)?;
        if !self.eat("?") {
            return Ok(condition);
        }
        let yes = self.choose(depth + 1)?;
        self.expect(":")?;
        let no = self.choose(depth + 1)?;
        Ok(Expr::Choose(Box::new(condition), Box::new(yes), Box::new(no)))
    }

    fn compare(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let left = self.additive(depth)?;
        let op = match self.peek() {
            Token::Symbol("<") => Op::Less,
            Token::Symbol("<=") => Op::LessOrEqual,
            Token::Symbol(">") => Op::Greater,
            Token::Symbol(">=") => Op::GreaterOrEqual,
            Token::Symbol("==") => Op::Equal,
            Token::Symbol("!=") => Op::NotEqual,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.additive(depth)?;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn additive(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut left = self.term(depth)?;
        loop {
            let op = match self.peek() {
                Token::Symbol("+") => Op::Add,
                Token::Symbol("-") => Op::Subtract,
                _ => return Ok(left),
            };
            self.at += 1;
            let right = self.term(depth)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn term(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut left = self.unary(depth)?;
        loop {
            let op = match self.peek() {
                Token::Symbol("*") => Op::Multiply,
                Token::Symbol("/") => Op::Divide,
                _ => return Ok(left),
            };
            self.at += 1;
            let right = self.unary(depth)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if *self.peek() == Token::Symbol("-") {
            self.at += 1;
            if depth > MAX_DEPTH {
                return self.fail(format!("the expression nests deeper than {MAX_DEPTH} levels"));
            }
            return Ok(Expr::Negate(Box::new(self.unary(depth + 1)?)));
        }
        if *self.peek() == Token::Symbol("+") {
            self.at += 1;
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let column = self.column();
        match self.peek().clone() {
            Token::Number(n) => {
                self.at += 1;
                Ok(Expr::Number(n))
            }
            Token::Symbol("(") => {
                self.at += 1;
                let inner = self.choose(depth + 1)?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Name(name) => {
                self.at += 1;
                if self.eat("(") {
                    return self.call(&name, column, depth);
                }
                match self.names.iter().position(|n| n.as_deref() == Some(name.as_str())) {
                    Some(index) => Ok(Expr::Metric { index, name }),
                    None => {
                        let known: Vec<&str> = self.names.iter().flatten().map(String::as_str).collect();
                        Err(ParseError {
                            column,
                            message: format!(
                                "{name:?} names no metric (the named metrics are: {})",
                                if known.is_empty() {
                                    "none".to_string()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        })
                    }
                }
            }
            other => self.fail(format!(
                "expected a number, a metric name or \"(\", found {}",
                describe(&other)
            )),
        }
    }

    fn call(&mut self, name: &str, column: usize, depth: usize) -> Result<Expr, ParseError> {
        let function = match name {
            "min" => Function::Min,
            "max" => Function::Max,
            "abs" => Function::Abs,
            "clamp" => Function::Clamp,
            other => {
                return Err(ParseError {
                    column,
                    message: format!("unknown function {other:?}: use min, max, abs or clamp"),
                });
            }
        };
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.choose(depth + 1)?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return self.fail(format!("expected \",\" or \")\", found {}", describe(self.peek())));
                }
            }
        }
        let arity_ok = match function {
            Function::Min | Function::Max => !args.is_empty(),
            Function::Abs => args.len() == 1,
            Function::Clamp => args.len() == 3,
        };
        if !arity_ok {
            let wanted = match function {
                Function::Min | Function::Max => "at least one argument",
                Function::Abs => "one argument",
                Function::Clamp => "three arguments (value, low, high)",
            };
            return Err(ParseError {
                column,
                message: format!("{name} takes {wanted}, not {}", args.len()),
            });
        }
        Ok(Expr::Call(function, args))
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Number(n) => format!("the number {n}"),
        Token::Name(n) => format!("{n:?}"),
        Token::Symbol(s) => format!("{s:?}"),
        Token::End => "the end of the expression".into(),
    }
}

/// Parses `text` over metrics named by `names` (one entry per spec metric).
pub fn parse(text: &str, names: &[Option<String>]) -> Result<Expr, ParseError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, at: 0, names };
    let expr = parser.choose(0)?;
    if *parser.peek() != Token::End {
        return parser.fail(format!(
            "unexpected {} after a complete expression",
            describe(parser.peek())
        ));
    }
    Ok(expr)
}

impl Expr {
    /// The expression's value, given each metric's value by index; an error names what failed.
    pub fn eval(&self, value_of: &dyn Fn(usize) -> Result<f64, String>) -> Result<f64, String> {
        let truth = |b: bool| if b { 1.0 } else { 0.0 };
        let result = match self {
            Expr::Number(n) => *n,
            Expr::Metric { index, .. } => value_of(*index)?,
            Expr::Negate(inner) => -inner.eval(value_of)?,
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.eval(value_of)?, b.eval(value_of)?);
                match op {
                    Op::Add => a + b,
                    Op::Subtract => a - b,
                    Op::Multiply => a * b,
                    Op::Divide if b == 0.0 => return Err(format!("division by zero ({a} / 0)")),
                    Op::Divide => a / b,
                    Op::Less => truth(a < b),
                    Op::LessOrEqual => truth(a <= b),
                    Op::Greater => truth(a > b),
                    Op::GreaterOrEqual => truth(a >= b),
                    Op::Equal => truth(a == b),
                    Op::NotEqual => truth(a != b),
                }
            }
            Expr::Call(function, args) => {
                let values = args.iter().map(|a| a.eval(value_of)).collect::<Result<Vec<f64>, _>>()?;
                match function {
                    Function::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
                    Function::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    Function::Abs => values[0].abs(),
                    Function::Clamp => values[0].max(values[1]).min(values[2]),
                }
            }
            // Only the branch taken is evaluated: `queue > 0 ? 100 / queue : 0` is safe.
            Expr::Choose(condition, yes, no) => {
                if condition.eval(value_of)? != 0.0 {
                    yes.eval(value_of)?
                } else {
                    no.eval(value_of)?
                }
            }
        };
        if result.is_finite() {
            Ok(result)
        } else {
            Err("the result is not a finite number".into())
        }
    }

    /// The metrics the expression reads, by index, each once, in order of first use.
    pub fn metrics(&self) -> Vec<usize> {
        let mut found = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Metric { index, .. } = e
                && !found.contains(index)
            {
                found.push(*index);
            }
        });
        found
    }

    fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Number(_) | Expr::Metric { .. } => {}
            Expr::Negate(inner) => inner.visit(f),
            Expr::Binary(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.visit(f)),
            Expr::Choose(c, a, b) => {
                c.visit(f);
                a.visit(f);
                b.visit(f);
            }
        }
    }
}

/// The value of a metric as a formula reads it: the whole value of an Object, External or
/// Prometheus metric, the average utilization (percent) of a resource metric with a
/// Utilization target, else the average value. None when it has no value.
pub fn input_value(outcome: &MetricOutcome) -> Option<f64> {
    if outcome.error.is_some() {
        return None;
    }
    if let Some(activation) = outcome.activation {
        return Some(activation.value as f64 / 1000.0);
    }
    let proposal = outcome.proposal.as_ref()?;
    Some(match proposal.utilization {
        Some(percent) => f64::from(percent),
        None => proposal.value as f64 / 1000.0,
    })
}

/// One named input of the formula, as `explain` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FormulaInput {
    pub name: String,
    pub index: usize,
    pub value: Option<f64>,
}

/// The formula's part in the decision: its inputs, its result, and the outcome that stands for
/// the metrics in the combination (with the fallback of a failed input, when one applies).
#[derive(Debug, Clone, PartialEq)]
pub struct FormulaOutcome {
    pub expression: String,
    pub inputs: Vec<FormulaInput>,
    pub result: Option<f64>,
    pub outcome: MetricOutcome,
}

/// Evaluates the formula over the metrics' outcomes and turns its result into a proposal, as
/// an Object metric with the formula's target would be. `reads` are the metrics the expression
/// reads ([`Expr::metrics`]). An input that failed fails the formula, standing in with its
/// fallback when one applies; an input not read at this evaluation (at zero replicas, a metric
/// that needs pods) counts as 0.
pub fn evaluate(
    formula: &Formula,
    expr: &Expr,
    reads: &[usize],
    specs: &[MetricSpec],
    outcomes: &[MetricOutcome],
    ctx: &Context,
    scale: &Scale,
) -> FormulaOutcome {
    let mut result = FormulaOutcome {
        expression: formula.expression.clone(),
        inputs: Vec::new(),
        result: None,
        outcome: MetricOutcome {
            source: None,
            formula: true,
            description: format!("formula {}", formula.expression),
            ..MetricOutcome::default()
        },
    };
    let mut failed: Vec<String> = Vec::new();
    let mut fallback: Option<i32> = None;
    // Whether a failed input has no fallback to stand in for it.
    let mut uncovered = false;
    for &index in reads {
        let outcome = outcomes.get(index);
        let value = match outcome {
            Some(o) if o.skipped => Some(0.0),
            Some(o) => input_value(o),
            None => None,
        };
        let name = specs
            .get(index)
            .and_then(|m| m.name.clone())
            .unwrap_or_else(|| format!("metrics[{index}]"));
        if value.is_none() {
            let why = outcome
                .and_then(|o| o.error.clone())
                .unwrap_or_else(|| "no value".into());
            failed.push(format!("{name}: {why}"));
            match outcome.map(|o| o.fallback) {
                Some(Some(f)) => fallback = Some(fallback.map_or(f, |b: i32| b.max(f))),
                Some(None) => uncovered = true,
                None => {}
            }
        }
        result.inputs.push(FormulaInput { name, index, value });
    }
    if !failed.is_empty() {
        result.outcome.error = Some(format!("the formula's input failed: {}", failed.join("; ")));
        // With every failing input on its fallback, the largest fallback stands in.
        if !uncovered {
            result.outcome.fallback = fallback;
        }
        return result;
    }
    let values: Vec<(usize, f64)> = result.inputs.iter().filter_map(|i| Some((i.index, i.value?))).collect();
    let evaluated = expr.eval(&|index| {
        values
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("metrics[{index}] has no value"))
    });
    let value = match evaluated {
        Ok(v) => v,
        Err(e) => {
            result.outcome.error = Some(format!("the formula could not be evaluated: {e}"));
            return result;
        }
    };
    result.result = Some(value);
    let milli = to_milli(value);
    let threshold = formula
        .activation_threshold
        .as_ref()
        .and_then(|q| ferroscale_api::quantity::milli_value(&q.0).ok())
        .unwrap_or(0);
    result.outcome.activation = Some(Activation {
        value: milli,
        threshold,
        active: milli > threshold,
    });
    let target = match formula.target.type_ {
        MetricTargetType::AverageValue => formula.target.average_value.as_ref(),
        _ => formula.target.value.as_ref(),
    }
    .and_then(|q| ferroscale_api::quantity::milli_value(&q.0).ok())
    .filter(|t| *t > 0);
    let Some(target) = target else {
        result.outcome.error = Some("the formula's target has no positive value".into());
        return result;
    };
    let proposal = match formula.target.type_ {
        MetricTargetType::AverageValue => Ok(calculate::average_of_whole(ctx, scale.status_replicas, target, milli)),
        _ => calculate::whole_value(ctx, scale.spec_replicas, target, milli),
    };
    match proposal {
        Ok(p) => {
            result.outcome.replicas = Some(p.replicas);
            result.outcome.proposal = Some(p);
        }
        Err(e) => result.outcome.error = Some(e),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<Option<String>> {
        list.iter().map(|n| Some(n.to_string())).collect()
    }

    fn eval(text: &str, values: &[(&str, f64)]) -> Result<f64, String> {
        let names: Vec<Option<String>> = values.iter().map(|(n, _)| Some(n.to_string())).collect();
        let expr = parse(text, &names).map_err(|e| e.to_string())?;
        expr.eval(&|i| Ok(values[i].1))
    }

    #[test]
    fn arithmetic_precedence_and_functions() {
        let v = [("queue", 120.0), ("rps", 500.0)];
        assert_eq!(eval("max(queue / 50, rps / 200)", &v), Ok(2.5));
        assert_eq!(eval("(queue + rps) / 2", &v), Ok(310.0));
        assert_eq!(eval("queue + rps / 2", &v), Ok(370.0));
        assert_eq!(eval("queue > 0 ? max(queue / 30, 1) : 0", &v), Ok(4.0));
        assert_eq!(eval("queue > 200 ? 1 : queue < 100 ? 2 : 3", &v), Ok(3.0));
        assert_eq!(eval("-queue + 2 * 3", &v), Ok(-114.0));
        assert_eq!(eval("abs(-2) + clamp(queue, 0, 100) + min(3, 1, 2)", &v), Ok(103.0));
        assert_eq!(eval("queue × 2 ÷ 4 − 10", &v), Ok(50.0));
        assert_eq!(
            eval("queue >= 120 == 1", &v),
            Err("at column 14: unexpected \"==\" after a complete expression".into())
        );
    }

    #[test]
    fn quantities_are_numbers() {
        let v = [("mem", 2.0 * 1024.0 * 1024.0 * 1024.0)];
        assert_eq!(eval("mem / 1Gi", &v), Ok(2.0));
        assert_eq!(eval("500m + 2k + 1e-3", &[]), Ok(2000.501));
    }

    #[test]
    fn errors_say_where() {
        let n = names(&["queue", "rps"]);
        let err = |text: &str| parse(text, &n).unwrap_err().to_string();
        assert_eq!(
            err("max(queue / 50, rps / 200"),
            "at column 26: expected \",\" or \")\", found the end of the expression"
        );
        assert_eq!(
            err("queue / latency"),
            "at column 9: \"latency\" names no metric (the named metrics are: queue, rps)"
        );
        assert_eq!(err("queue $ 2"), "at column 7: unexpected character '$'");
        assert_eq!(
            err("median(queue)"),
            "at column 1: unknown function \"median\": use min, max, abs or clamp"
        );
        assert_eq!(
            err("clamp(queue, 1)"),
            "at column 1: clamp takes three arguments (value, low, high), not 2"
        );
        assert_eq!(
            err("queue ? 1"),
            "at column 10: expected \":\", found the end of the expression"
        );
        assert_eq!(
            err(""),
            "at column 1: expected a number, a metric name or \"(\", found the end of the expression"
        );
        assert!(err("2x").contains("is not a number or quantity"));
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(err(&deep).contains("nests deeper"));
        let negations = format!("{}1", "-".repeat(100));
        assert!(err(&negations).contains("nests deeper"));
    }

    #[test]
    fn evaluation_errors_and_lazy_branches() {
        let v = [("queue", 0.0)];
        assert_eq!(eval("10 / queue", &v), Err("division by zero (10 / 0)".into()));
        assert_eq!(eval("queue > 0 ? 10 / queue : 0", &v), Ok(0.0));
        assert_eq!(eval("1e308 * 10", &v), Err("the result is not a finite number".into()));
    }

    proptest::proptest! {
        #[test]
        fn any_expression_is_parsed_or_refused_without_panicking(
            text in "[a-c0-9.()+*/<>=!?:, minaxbsclmpkGie−×÷-]{0,60}",
            a in proptest::num::f64::ANY,
            b in -1e12f64..1e12,
        ) {
            let n = names(&["a", "b", "c"]);
            if let Ok(expr) = parse(&text, &n) {
                let _ = expr.eval(&|i| Ok([a, b, 0.0][i]));
            }
        }
    }

    #[test]
    fn lists_the_metrics_it_reads() {
        let n = names(&["a", "b", "c"]);
        assert_eq!(parse("c + a * c", &n).unwrap().metrics(), [2, 0]);
    }
}
