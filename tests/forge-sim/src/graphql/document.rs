//! A GraphQL document, parsed: the operations with their variable definitions and selection sets,
//! and argument values (literals or `$variables`). It follows the GraphQL grammar for what clients of
//! this simulator send (one or more operations, aliases, arguments, nested selections, comments,
//! block strings); fragments and directives are recognised and refused with a clear message rather
//! than misread. It knows nothing about GitLab's schema.

use serde_json::{Map, Value};

/// Where a token starts, 1-based, as GraphQL errors report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Query,
    Mutation,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: OperationKind,
    pub name: Option<String>,
    /// `($name: Type = default)`: the name without `$`, the type as written (`ID!`, `[Int!]`).
    pub variables: Vec<VariableDefinition>,
    pub selections: Vec<Field>,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct VariableDefinition {
    pub name: String,
    pub ty: String,
    pub default: Option<Literal>,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub arguments: Vec<(String, Literal)>,
    pub selections: Vec<Field>,
    pub pos: Pos,
}

impl Field {
    /// The key of this field in the response: its alias, else its name.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// An argument value as written in the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Variable(String),
    Int(i64),
    Float(f64),
    String(String),
    Boolean(bool),
    Null,
    Enum(String),
    List(Vec<Literal>),
    Object(Vec<(String, Literal)>),
}

impl Literal {
    /// The value with variables replaced by theirs (an absent variable is null).
    pub fn resolve(&self, variables: &Map<String, Value>) -> Value {
        match self {
            Literal::Variable(name) => variables.get(name).cloned().unwrap_or(Value::Null),
            Literal::Int(n) => Value::from(*n),
            Literal::Float(f) => Value::from(*f),
            Literal::String(s) | Literal::Enum(s) => Value::String(s.clone()),
            Literal::Boolean(b) => Value::Bool(*b),
            Literal::Null => Value::Null,
            Literal::List(items) => {
                Value::Array(items.iter().map(|i| i.resolve(variables)).collect())
            }
            Literal::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.resolve(variables)))
                    .collect(),
            ),
        }
    }

    /// Every variable this value names.
    pub fn variables<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Literal::Variable(name) => out.push(name),
            Literal::List(items) => items.iter().for_each(|i| i.variables(out)),
            Literal::Object(fields) => fields.iter().for_each(|(_, v)| v.variables(out)),
            _ => {}
        }
    }
}

/// Why a document could not be read, with where.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Int(i64),
    Float(f64),
    String(String),
    Punct(char),
    Spread,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Name(n) => n.clone(),
            Token::Int(n) => n.to_string(),
            Token::Float(f) => f.to_string(),
            Token::String(s) => format!("\"{s}\""),
            Token::Punct(c) => c.to_string(),
            Token::Spread => "...".into(),
            Token::End => "end of document".into(),
        }
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

impl Lexer<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            pos: self.pos(),
        }
    }

    /// Skips whitespace, commas, the byte order mark and `#` comments.
    fn skip_ignored(&mut self) {
        while let Some(&c) = self.chars.peek() {
            match c {
                ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}' => {
                    self.bump();
                }
                '#' => {
                    while let Some(&c) = self.chars.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => return,
            }
        }
    }

    fn tokens(mut self) -> Result<Vec<(Token, Pos)>, ParseError> {
        let mut out = Vec::new();
        loop {
            self.skip_ignored();
            let pos = self.pos();
            let Some(&c) = self.chars.peek() else {
                out.push((Token::End, pos));
                return Ok(out);
            };
            let token = match c {
                '!' | '$' | '&' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {
                    self.bump();
                    Token::Punct(c)
                }
                '.' => {
                    for _ in 0..3 {
                        if self.bump() != Some('.') {
                            return Err(ParseError {
                                message: "Expected \"...\"".into(),
                                pos,
                            });
                        }
                    }
                    Token::Spread
                }
                '"' => self.string()?,
                '-' | '0'..='9' => self.number()?,
                c if c == '_' || c.is_ascii_alphabetic() => {
                    let mut name = String::new();
                    while let Some(&c) = self.chars.peek() {
                        if c == '_' || c.is_ascii_alphanumeric() {
                            name.push(c);
                            self.bump();
                        } else {
                            break;
                        }
                    }
                    Token::Name(name)
                }
                other => return Err(self.error(format!("Unexpected character \"{other}\""))),
            };
            out.push((token, pos));
        }
    }

    fn number(&mut self) -> Result<Token, ParseError> {
        let mut text = String::new();
        let mut float = false;
        while let Some(&c) = self.chars.peek() {
            match c {
                '0'..='9' | '-' | '+' => {}
                '.' | 'e' | 'E' => float = true,
                _ => break,
            }
            text.push(c);
            self.bump();
        }
        let bad = || ParseError {
            message: format!("Invalid number \"{text}\""),
            pos: self.pos(),
        };
        if float {
            text.parse().map(Token::Float).map_err(|_| bad())
        } else {
            text.parse().map(Token::Int).map_err(|_| bad())
        }
    }

    fn string(&mut self) -> Result<Token, ParseError> {
        self.bump();
        if self.chars.peek() == Some(&'"') {
            self.bump();
            if self.chars.peek() != Some(&'"') {
                return Ok(Token::String(String::new()));
            }
            self.bump();
            return self.block_string();
        }
        let mut s = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.error("Unterminated string")),
                Some('"') => return Ok(Token::String(s)),
                Some('\\') => match self.bump() {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('/') => s.push('/'),
                    Some('b') => s.push('\u{8}'),
                    Some('f') => s.push('\u{c}'),
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.error(format!("Bad unicode escape \\u{hex}")))?;
                        s.push(c);
                    }
                    other => {
                        return Err(self.error(format!(
                            "Bad escape \\{}",
                            other.map(String::from).unwrap_or_default()
                        )));
                    }
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// `"""..."""`: raw text up to the closing quotes, common indentation removed.
    fn block_string(&mut self) -> Result<Token, ParseError> {
        let mut raw = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error("Unterminated block string")),
                Some('"') if raw.ends_with("\"\"") && !raw.ends_with("\\\"\"") => {
                    raw.truncate(raw.len() - 2);
                    break;
                }
                Some(c) => raw.push(c),
            }
        }
        let raw = raw.replace("\\\"\"\"", "\"\"\"");
        let lines: Vec<&str> = raw.lines().collect();
        let indent = lines
            .iter()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let mut out: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    l.to_string()
                } else {
                    l.get(indent..).unwrap_or("").to_string()
                }
            })
            .collect();
        while out.first().is_some_and(|l| l.trim().is_empty()) {
            out.remove(0);
        }
        while out.last().is_some_and(|l| l.trim().is_empty()) {
            out.pop();
        }
        Ok(Token::String(out.join("\n")))
    }
}

struct Parser {
    tokens: Vec<(Token, Pos)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at].0
    }

    fn pos(&self) -> Pos {
        self.tokens[self.at].1
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.at].0.clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        ParseError {
            message: format!(
                "Parse error on \"{}\": expected {wanted}",
                self.peek().describe()
            ),
            pos: self.pos(),
        }
    }

    fn punct(&mut self, c: char) -> Result<(), ParseError> {
        if self.peek() == &Token::Punct(c) {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(&format!("\"{c}\"")))
        }
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == &Token::Punct(c)
    }

    fn name(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Token::Name(_) => match self.next() {
                Token::Name(n) => Ok(n),
                _ => unreachable!("peeked a name"),
            },
            _ => Err(self.unexpected("a name")),
        }
    }

    fn document(&mut self) -> Result<Vec<Operation>, ParseError> {
        let mut operations = Vec::new();
        while self.peek() != &Token::End {
            operations.push(self.operation()?);
        }
        if operations.is_empty() {
            return Err(ParseError {
                message: "No query string was present".into(),
                pos: self.pos(),
            });
        }
        Ok(operations)
    }

    fn operation(&mut self) -> Result<Operation, ParseError> {
        let pos = self.pos();
        if self.is_punct('{') {
            return Ok(Operation {
                kind: OperationKind::Query,
                name: None,
                variables: Vec::new(),
                selections: self.selection_set()?,
                pos,
            });
        }
        let kind = match self.peek() {
            Token::Name(n) if n == "query" => OperationKind::Query,
            Token::Name(n) if n == "mutation" => OperationKind::Mutation,
            Token::Name(n) if n == "fragment" => {
                return Err(ParseError {
                    message: "Fragments are not supported by this simulator".into(),
                    pos,
                });
            }
            Token::Name(n) if n == "subscription" => {
                return Err(ParseError {
                    message: "Subscriptions are not supported over HTTP".into(),
                    pos,
                });
            }
            _ => return Err(self.unexpected("\"query\", \"mutation\" or \"{\"")),
        };
        self.next();
        let name = match self.peek() {
            Token::Name(_) => Some(self.name()?),
            _ => None,
        };
        let mut variables = Vec::new();
        if self.is_punct('(') {
            self.next();
            while !self.is_punct(')') {
                let pos = self.pos();
                self.punct('$')?;
                let name = self.name()?;
                self.punct(':')?;
                let ty = self.type_ref()?;
                let default = if self.is_punct('=') {
                    self.next();
                    Some(self.literal(true)?)
                } else {
                    None
                };
                variables.push(VariableDefinition {
                    name,
                    ty,
                    default,
                    pos,
                });
            }
            self.next();
        }
        self.no_directives()?;
        Ok(Operation {
            kind,
            name,
            variables,
            selections: self.selection_set()?,
            pos,
        })
    }

    fn type_ref(&mut self) -> Result<String, ParseError> {
        let mut ty = if self.is_punct('[') {
            self.next();
            let inner = self.type_ref()?;
            self.punct(']')?;
            format!("[{inner}]")
        } else {
            self.name()?
        };
        if self.is_punct('!') {
            self.next();
            ty.push('!');
        }
        Ok(ty)
    }

    fn no_directives(&self) -> Result<(), ParseError> {
        if self.is_punct('@') {
            return Err(ParseError {
                message: "Directives are not supported by this simulator".into(),
                pos: self.pos(),
            });
        }
        Ok(())
    }

    fn selection_set(&mut self) -> Result<Vec<Field>, ParseError> {
        self.punct('{')?;
        let mut fields = Vec::new();
        while !self.is_punct('}') {
            if self.peek() == &Token::Spread {
                return Err(ParseError {
                    message: "Fragments are not supported by this simulator".into(),
                    pos: self.pos(),
                });
            }
            fields.push(self.field()?);
        }
        self.next();
        if fields.is_empty() {
            return Err(self.unexpected("a field"));
        }
        Ok(fields)
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let pos = self.pos();
        let first = self.name()?;
        let (alias, name) = if self.is_punct(':') {
            self.next();
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        let mut arguments = Vec::new();
        if self.is_punct('(') {
            self.next();
            while !self.is_punct(')') {
                let arg = self.name()?;
                self.punct(':')?;
                arguments.push((arg, self.literal(false)?));
            }
            self.next();
        }
        self.no_directives()?;
        let selections = if self.is_punct('{') {
            self.selection_set()?
        } else {
            Vec::new()
        };
        Ok(Field {
            alias,
            name,
            arguments,
            selections,
            pos,
        })
    }

    /// A value; `constant` refuses variables (a variable's default value).
    fn literal(&mut self, constant: bool) -> Result<Literal, ParseError> {
        let pos = self.pos();
        match self.next() {
            Token::Punct('$') if !constant => Ok(Literal::Variable(self.name()?)),
            Token::Int(n) => Ok(Literal::Int(n)),
            Token::Float(f) => Ok(Literal::Float(f)),
            Token::String(s) => Ok(Literal::String(s)),
            Token::Name(n) => Ok(match n.as_str() {
                "true" => Literal::Boolean(true),
                "false" => Literal::Boolean(false),
                "null" => Literal::Null,
                _ => Literal::Enum(n),
            }),
            Token::Punct('[') => {
                let mut items = Vec::new();
                while !self.is_punct(']') {
                    items.push(self.literal(constant)?);
                }
                self.next();
                Ok(Literal::List(items))
            }
            Token::Punct('{') => {
                let mut fields = Vec::new();
                while !self.is_punct('}') {
                    let k = self.name()?;
                    self.punct(':')?;
                    fields.push((k, self.literal(constant)?));
                }
                self.next();
                Ok(Literal::Object(fields))
            }
            other => Err(ParseError {
                message: format!("Parse error on \"{}\": expected a value", other.describe()),
                pos,
            }),
        }
    }
}

/// Parses a whole document.
pub fn parse(text: &str) -> Result<Vec<Operation>, ParseError> {
    let lexer = Lexer {
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
    };
    let tokens = lexer.tokens()?;
    Parser { tokens, at: 0 }.document()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_operation_with_variables_aliases_and_nested_selections_is_read() {
        let ops = parse(
            r#"
            # the cadences of a group
            query Cadences($fullPath: ID!, $first: Int = 20, $after: String) {
              group(fullPath: $fullPath) {
                all: iterationCadences(first: $first, after: $after, active: true) {
                  nodes { id title }
                  pageInfo { hasNextPage, endCursor }
                }
              }
            }"#,
        )
        .unwrap();
        assert_eq!(ops.len(), 1);
        let op = &ops[0];
        assert_eq!(op.kind, OperationKind::Query);
        assert_eq!(op.name.as_deref(), Some("Cadences"));
        let vars: Vec<_> = op.variables.iter().map(|v| (&*v.name, &*v.ty)).collect();
        assert_eq!(
            vars,
            [("fullPath", "ID!"), ("first", "Int"), ("after", "String")]
        );
        assert_eq!(op.variables[1].default, Some(Literal::Int(20)));
        let group = &op.selections[0];
        assert_eq!(group.name, "group");
        assert_eq!(
            group.pos,
            Pos {
                line: 4,
                column: 15
            }
        );
        let cadences = &group.selections[0];
        assert_eq!(
            (cadences.key(), &*cadences.name),
            ("all", "iterationCadences")
        );
        let args = Map::from_iter([("first".to_string(), json!(100))]);
        let resolved: Vec<_> = cadences
            .arguments
            .iter()
            .map(|(k, v)| (k.as_str(), v.resolve(&args)))
            .collect();
        assert_eq!(
            resolved,
            [
                ("first", json!(100)),
                ("after", Value::Null),
                ("active", json!(true))
            ]
        );
        assert_eq!(cadences.selections[1].selections[1].name, "endCursor");
    }

    #[test]
    fn literal_objects_lists_and_strings_are_values() {
        let ops = parse(
            r#"mutation { iterationCreate(input: {groupPath: "a/b", ids: [1, 2.5, null], state: closed,
               description: """
                 two
                   lines
               """, note: "tab\there \u00e9"}) { errors } }"#,
        )
        .unwrap();
        assert_eq!(ops[0].kind, OperationKind::Mutation);
        let (name, input) = &ops[0].selections[0].arguments[0];
        assert_eq!(name, "input");
        assert_eq!(
            input.resolve(&Map::new()),
            json!({"groupPath": "a/b", "ids": [1, 2.5, null], "state": "closed",
                   "description": "two\n  lines", "note": "tab\there é"})
        );
    }

    #[test]
    fn a_shorthand_query_is_a_query() {
        let ops = parse("{ currentUser { username } }").unwrap();
        assert_eq!(ops[0].kind, OperationKind::Query);
        assert_eq!(ops[0].selections[0].selections[0].name, "username");
    }

    #[test]
    fn broken_documents_say_where() {
        let e = parse("query {\n  group(fullPath: \"a\") {\n    id\n").unwrap_err();
        assert!(e.message.contains("end of document"), "{e:?}");
        let e = parse("query { group(fullPath: \"a) { id } }").unwrap_err();
        assert_eq!(e.message, "Unterminated string");
        let e = parse("{ group { ...F } }").unwrap_err();
        assert!(e.message.contains("Fragments"), "{e:?}");
        assert_eq!(
            e.pos,
            Pos {
                line: 1,
                column: 11
            }
        );
        assert_eq!(
            parse("  # nothing\n").unwrap_err().message,
            "No query string was present"
        );
        assert!(parse("{ group @include(if: true) { id } }").is_err());
    }
}
