//! The part of GitLab's GraphQL schema this simulator serves (groups' iterations; projects' issues
//! and their design collections), by GitLab's own type, field and argument
//! names (GitLab's GraphQL reference), and the static checks graphql-ruby runs before anything
//! executes: unknown fields and arguments, missing selections, undeclared or mistyped variables, and
//! variable values that do not fit their input type. Errors carry graphql-ruby's wording. It never
//! resolves data.

use serde_json::{Map, Value};

use super::document::{Field, Literal, Operation, OperationKind, Pos};

/// What a field returns: a scalar (or enum), or an object type named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Scalar(&'static str),
    Object(&'static str),
}

pub struct FieldDef {
    pub name: &'static str,
    pub returns: Returns,
    /// (argument, type) in GraphQL notation; `!` marks a required argument.
    pub args: &'static [(&'static str, &'static str)],
}

const fn scalar(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef {
        name,
        returns: Returns::Scalar(ty),
        args: &[],
    }
}

const fn object(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef {
        name,
        returns: Returns::Object(ty),
        args: &[],
    }
}

const PAGING: [(&str, &str); 4] = [
    ("first", "Int"),
    ("after", "String"),
    ("last", "Int"),
    ("before", "String"),
];

const CADENCES_ARGS: [(&str, &str); 10] = [
    ("id", "IterationsCadenceID"),
    ("title", "String"),
    ("durationInWeeks", "Int"),
    ("automatic", "Boolean"),
    ("active", "Boolean"),
    ("includeAncestorGroups", "Boolean"),
    PAGING[0],
    PAGING[1],
    PAGING[2],
    PAGING[3],
];

const ITERATIONS_ARGS: [(&str, &str); 17] = [
    ("state", "IterationState"),
    ("title", "String"),
    ("search", "String"),
    ("in", "[IterationSearchableField!]"),
    ("id", "ID"),
    ("iid", "ID"),
    ("includeAncestors", "Boolean"),
    ("includeDescendants", "Boolean"),
    ("iterationCadenceIds", "[IterationsCadenceID!]"),
    ("sort", "IterationSort"),
    ("startDate", "Time"),
    ("endDate", "Time"),
    ("timeframe", "Timeframe"),
    PAGING[0],
    PAGING[1],
    PAGING[2],
    PAGING[3],
];

const QUERY: &[FieldDef] = &[
    FieldDef {
        name: "group",
        returns: Returns::Object("Group"),
        args: &[("fullPath", "ID!")],
    },
    FieldDef {
        name: "project",
        returns: Returns::Object("Project"),
        args: &[("fullPath", "ID!")],
    },
];

const ISSUES_ARGS: [(&str, &str); 7] = [
    ("iid", "String"),
    ("iids", "[String!]"),
    ("state", "IssuableState"),
    PAGING[0],
    PAGING[1],
    PAGING[2],
    PAGING[3],
];

const PROJECT: &[FieldDef] = &[
    scalar("id", "ID"),
    scalar("name", "String"),
    scalar("path", "String"),
    scalar("fullPath", "ID"),
    scalar("webUrl", "String"),
    FieldDef {
        name: "issue",
        returns: Returns::Object("Issue"),
        args: &[("iid", "String")],
    },
    FieldDef {
        name: "issues",
        returns: Returns::Object("IssueConnection"),
        args: &ISSUES_ARGS,
    },
];

const ISSUE: &[FieldDef] = &[
    scalar("id", "ID"),
    scalar("iid", "String"),
    scalar("title", "String"),
    scalar("state", "IssueState"),
    scalar("confidential", "Boolean"),
    scalar("createdAt", "Time"),
    scalar("webUrl", "String"),
    object("designCollection", "DesignCollection"),
];

const DESIGNS_ARGS: [(&str, &str); 7] = [
    ("ids", "[DesignManagementDesignID!]"),
    ("filenames", "[String!]"),
    ("atVersion", "DesignManagementVersionID"),
    PAGING[0],
    PAGING[1],
    PAGING[2],
    PAGING[3],
];

const VERSIONS_ARGS: [(&str, &str); 6] = [
    ("earlierOrEqualToSha", "String"),
    ("earlierOrEqualToId", "DesignManagementVersionID"),
    PAGING[0],
    PAGING[1],
    PAGING[2],
    PAGING[3],
];

const DESIGN_COLLECTION: &[FieldDef] = &[
    object("project", "Project"),
    object("issue", "Issue"),
    scalar("copyState", "DesignCollectionCopyState"),
    FieldDef {
        name: "designs",
        returns: Returns::Object("DesignConnection"),
        args: &DESIGNS_ARGS,
    },
    FieldDef {
        name: "versions",
        returns: Returns::Object("DesignVersionConnection"),
        args: &VERSIONS_ARGS,
    },
];

const DESIGN: &[FieldDef] = &[
    scalar("id", "ID"),
    scalar("filename", "String"),
    scalar("fullPath", "String"),
    scalar("notesCount", "Int"),
    scalar("image", "String"),
    scalar("imageV432x230", "String"),
    scalar("event", "DesignVersionEvent"),
    scalar("description", "String"),
    scalar("webUrl", "String"),
    object("project", "Project"),
    object("issue", "Issue"),
    FieldDef {
        name: "versions",
        returns: Returns::Object("DesignVersionConnection"),
        args: &VERSIONS_ARGS,
    },
];

const DESIGN_VERSION: &[FieldDef] = &[
    scalar("id", "ID"),
    scalar("sha", "ID"),
    scalar("createdAt", "Time"),
    object("author", "UserCore"),
];

const USER_CORE: &[FieldDef] = &[
    scalar("id", "ID"),
    scalar("username", "String"),
    scalar("name", "String"),
    scalar("webUrl", "String"),
];

const ISSUE_CONNECTION: &[FieldDef] = &[
    object("nodes", "Issue"),
    object("edges", "IssueEdge"),
    object("pageInfo", "PageInfo"),
];

const DESIGN_CONNECTION: &[FieldDef] = &[
    object("nodes", "Design"),
    object("edges", "DesignEdge"),
    object("pageInfo", "PageInfo"),
];

const DESIGN_VERSION_CONNECTION: &[FieldDef] = &[
    object("nodes", "DesignVersion"),
    object("edges", "DesignVersionEdge"),
    object("pageInfo", "PageInfo"),
];

const ISSUE_EDGE: &[FieldDef] = &[scalar("cursor", "String"), object("node", "Issue")];
const DESIGN_EDGE: &[FieldDef] = &[scalar("cursor", "String"), object("node", "Design")];
const DESIGN_VERSION_EDGE: &[FieldDef] =
    &[scalar("cursor", "String"), object("node", "DesignVersion")];

const MUTATION: &[FieldDef] = &[
    FieldDef {
        name: "iterationCadenceCreate",
        returns: Returns::Object("IterationCadenceCreatePayload"),
        args: &[("input", "IterationCadenceCreateInput!")],
    },
    FieldDef {
        name: "iterationCadenceUpdate",
        returns: Returns::Object("IterationCadenceUpdatePayload"),
        args: &[("input", "IterationCadenceUpdateInput!")],
    },
    FieldDef {
        name: "iterationCreate",
        returns: Returns::Object("iterationCreatePayload"),
        args: &[("input", "iterationCreateInput!")],
    },
];

const GROUP: &[FieldDef] = &[
    scalar("id", "ID"),
    scalar("name", "String"),
    scalar("path", "String"),
    scalar("fullPath", "ID"),
    scalar("fullName", "String"),
    scalar("webUrl", "String"),
    FieldDef {
        name: "iterationCadences",
        returns: Returns::Object("IterationCadenceConnection"),
        args: &CADENCES_ARGS,
    },
    FieldDef {
        name: "iterations",
        returns: Returns::Object("IterationConnection"),
        args: &ITERATIONS_ARGS,
    },
];

const CADENCE: &[FieldDef] = &[
    scalar("id", "IterationsCadenceID"),
    scalar("title", "String"),
    scalar("description", "String"),
    scalar("automatic", "Boolean"),
    scalar("startDate", "Time"),
    scalar("durationInWeeks", "Int"),
    scalar("iterationsInAdvance", "Int"),
    scalar("active", "Boolean"),
    scalar("rollOver", "Boolean"),
];

const ITERATION: &[FieldDef] = &[
    scalar("id", "ID"),
    scalar("iid", "ID"),
    scalar("sequence", "Int"),
    scalar("title", "String"),
    scalar("description", "String"),
    scalar("state", "IterationState"),
    scalar("startDate", "Time"),
    scalar("dueDate", "Time"),
    scalar("createdAt", "Time"),
    scalar("updatedAt", "Time"),
    scalar("webUrl", "String"),
    scalar("webPath", "String"),
    object("iterationCadence", "IterationCadence"),
];

const CADENCE_CONNECTION: &[FieldDef] = &[
    object("nodes", "IterationCadence"),
    object("edges", "IterationCadenceEdge"),
    object("pageInfo", "PageInfo"),
];

const ITERATION_CONNECTION: &[FieldDef] = &[
    object("nodes", "Iteration"),
    object("edges", "IterationEdge"),
    object("pageInfo", "PageInfo"),
];

const CADENCE_EDGE: &[FieldDef] = &[
    scalar("cursor", "String"),
    object("node", "IterationCadence"),
];

const ITERATION_EDGE: &[FieldDef] = &[scalar("cursor", "String"), object("node", "Iteration")];

const PAGE_INFO: &[FieldDef] = &[
    scalar("hasNextPage", "Boolean"),
    scalar("hasPreviousPage", "Boolean"),
    scalar("startCursor", "String"),
    scalar("endCursor", "String"),
];

const CADENCE_PAYLOAD: &[FieldDef] = &[
    scalar("clientMutationId", "String"),
    scalar("errors", "String"),
    object("iterationCadence", "IterationCadence"),
];

const ITERATION_PAYLOAD: &[FieldDef] = &[
    scalar("clientMutationId", "String"),
    scalar("errors", "String"),
    object("iteration", "Iteration"),
];

/// The fields of an object type.
pub fn fields_of(type_name: &str) -> Option<&'static [FieldDef]> {
    Some(match type_name {
        "Query" => QUERY,
        "Mutation" => MUTATION,
        "Group" => GROUP,
        "IterationCadence" => CADENCE,
        "Iteration" => ITERATION,
        "IterationCadenceConnection" => CADENCE_CONNECTION,
        "IterationConnection" => ITERATION_CONNECTION,
        "IterationCadenceEdge" => CADENCE_EDGE,
        "IterationEdge" => ITERATION_EDGE,
        "PageInfo" => PAGE_INFO,
        "Project" => PROJECT,
        "Issue" => ISSUE,
        "DesignCollection" => DESIGN_COLLECTION,
        "Design" => DESIGN,
        "DesignVersion" => DESIGN_VERSION,
        "UserCore" => USER_CORE,
        "IssueConnection" => ISSUE_CONNECTION,
        "DesignConnection" => DESIGN_CONNECTION,
        "DesignVersionConnection" => DESIGN_VERSION_CONNECTION,
        "IssueEdge" => ISSUE_EDGE,
        "DesignEdge" => DESIGN_EDGE,
        "DesignVersionEdge" => DESIGN_VERSION_EDGE,
        "IterationCadenceCreatePayload" | "IterationCadenceUpdatePayload" => CADENCE_PAYLOAD,
        "iterationCreatePayload" => ITERATION_PAYLOAD,
        _ => return None,
    })
}

/// The fields of an input object type: (name, type).
fn input_fields_of(type_name: &str) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match type_name {
        "IterationCadenceCreateInput" => &[
            ("clientMutationId", "String"),
            ("groupPath", "ID!"),
            ("title", "String"),
            ("description", "String"),
            ("automatic", "Boolean!"),
            ("active", "Boolean!"),
            ("startDate", "Time"),
            ("durationInWeeks", "Int"),
            ("iterationsInAdvance", "Int"),
            ("rollOver", "Boolean"),
        ],
        "IterationCadenceUpdateInput" => &[
            ("clientMutationId", "String"),
            ("id", "IterationsCadenceID!"),
            ("title", "String"),
            ("description", "String"),
            ("automatic", "Boolean"),
            ("active", "Boolean"),
            ("startDate", "Time"),
            ("durationInWeeks", "Int"),
            ("iterationsInAdvance", "Int"),
            ("rollOver", "Boolean"),
        ],
        "iterationCreateInput" => &[
            ("clientMutationId", "String"),
            ("groupPath", "ID"),
            ("projectPath", "ID"),
            ("iterationsCadenceId", "IterationsCadenceID"),
            ("title", "String"),
            ("description", "String"),
            ("startDate", "String"),
            ("dueDate", "String"),
        ],
        _ => return None,
    })
}

const ENUMS: &[(&str, &[&str])] = &[
    (
        "IterationState",
        &["upcoming", "started", "current", "opened", "closed", "all"],
    ),
    ("IterationSearchableField", &["TITLE", "CADENCE_TITLE"]),
    ("IssuableState", &["opened", "closed", "locked", "all"]),
    (
        "IterationSort",
        &["CADENCE_AND_DUE_DATE_ASC", "CADENCE_AND_DUE_DATE_DESC"],
    ),
];

const SCALARS: &[&str] = &[
    "ID",
    "String",
    "Int",
    "Float",
    "Boolean",
    "Time",
    "IterationsCadenceID",
    "DesignManagementDesignID",
    "DesignManagementVersionID",
];

/// One GraphQL error: its message, where in the document, and the response path.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphQlError {
    pub message: String,
    pub pos: Option<Pos>,
    pub path: Vec<String>,
}

impl GraphQlError {
    pub fn at(message: impl Into<String>, pos: Pos, path: &[String]) -> GraphQlError {
        GraphQlError {
            message: message.into(),
            pos: Some(pos),
            path: path.to_vec(),
        }
    }
}

/// `ID!` -> (`ID`, true); `[Int!]` -> (`[Int!]`, false).
fn split_non_null(ty: &str) -> (&str, bool) {
    match ty.strip_suffix('!') {
        Some(inner) => (inner, true),
        None => (ty, false),
    }
}

fn known_input_type(ty: &str) -> bool {
    let (inner, _) = split_non_null(ty);
    if let Some(item) = inner.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return known_input_type(item);
    }
    SCALARS.contains(&inner)
        || ENUMS.iter().any(|(name, _)| *name == inner)
        || input_fields_of(inner).is_some()
}

/// A variable may stand where an argument of `arg_ty` goes when their types match; a non-null
/// variable may also fill a nullable argument.
fn fits(var_ty: &str, arg_ty: &str) -> bool {
    let (var_inner, var_required) = split_non_null(var_ty);
    let (arg_inner, arg_required) = split_non_null(arg_ty);
    if arg_required && !var_required {
        return false;
    }
    match (
        var_inner
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']')),
        arg_inner
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']')),
    ) {
        (Some(v), Some(a)) => fits(v, a),
        (None, None) => var_inner == arg_inner,
        _ => false,
    }
}

/// The static checks of one operation, with its variables (defaults applied). Returns every problem
/// found.
pub fn validate(op: &Operation, variables: &Map<String, Value>) -> Vec<GraphQlError> {
    let mut errors = Vec::new();
    let root = match op.kind {
        OperationKind::Query => "Query",
        OperationKind::Mutation => "Mutation",
    };
    let op_name = match (&op.name, op.kind) {
        (Some(n), _) => format!("operation '{n}'"),
        (None, OperationKind::Query) => "anonymous query".to_string(),
        (None, OperationKind::Mutation) => "anonymous mutation".to_string(),
    };
    for var in &op.variables {
        if !known_input_type(&var.ty) {
            let base = var.ty.trim_matches(|c| c == '[' || c == ']' || c == '!');
            errors.push(GraphQlError::at(
                format!("{base} isn't a defined input type (on ${})", var.name),
                var.pos,
                &[],
            ));
        }
    }
    let mut used = Vec::new();
    let path = vec![root.to_lowercase()];
    check_selections(
        root,
        &op.selections,
        op,
        &op_name,
        &path,
        &mut used,
        &mut errors,
    );
    for var in &op.variables {
        if !used.contains(&var.name.as_str()) {
            errors.push(GraphQlError::at(
                format!(
                    "Variable ${} is declared by {op_name} but not used",
                    var.name
                ),
                var.pos,
                &[],
            ));
        }
    }
    if errors.is_empty() {
        for var in &op.variables {
            let value = variables.get(&var.name).unwrap_or(&Value::Null);
            if let Err((at, problem)) = coerce(&var.ty, value) {
                let at = if at.is_empty() {
                    String::new()
                } else {
                    format!(" for {}", at.join("."))
                };
                errors.push(GraphQlError::at(
                    format!(
                        "Variable ${} of type {} was provided invalid value{at} ({problem})",
                        var.name, var.ty
                    ),
                    var.pos,
                    &[],
                ));
            }
        }
    }
    errors
}

#[allow(clippy::too_many_arguments)]
fn check_selections<'a>(
    type_name: &str,
    selections: &'a [Field],
    op: &Operation,
    op_name: &str,
    path: &[String],
    used: &mut Vec<&'a str>,
    errors: &mut Vec<GraphQlError>,
) {
    let Some(fields) = fields_of(type_name) else {
        return;
    };
    for sel in selections {
        let mut here = path.to_vec();
        here.push(sel.key().to_string());
        if sel.name == "__typename" {
            continue;
        }
        let Some(def) = fields.iter().find(|f| f.name == sel.name) else {
            errors.push(GraphQlError::at(
                format!("Field '{}' doesn't exist on type '{type_name}'", sel.name),
                sel.pos,
                &here,
            ));
            continue;
        };
        for (arg, value) in &sel.arguments {
            let Some((_, arg_ty)) = def.args.iter().find(|(a, _)| a == arg) else {
                errors.push(GraphQlError::at(
                    format!("Field '{}' doesn't accept argument '{arg}'", sel.name),
                    sel.pos,
                    &here,
                ));
                continue;
            };
            let mut names = Vec::new();
            value.variables(&mut names);
            for name in names {
                used.push(name);
                match op.variables.iter().find(|v| v.name == name) {
                    None => errors.push(GraphQlError::at(
                        format!("Variable ${name} is used by {op_name} but not declared"),
                        sel.pos,
                        &here,
                    )),
                    Some(var) if matches!(value, Literal::Variable(_)) => {
                        if !fits(&var.ty, arg_ty) {
                            errors.push(GraphQlError::at(
                                format!(
                                    "Type mismatch on variable ${name} and argument {arg} ({} / {arg_ty})",
                                    var.ty
                                ),
                                sel.pos,
                                &here,
                            ));
                        }
                    }
                    Some(_) => {}
                }
            }
            if !matches!(value, Literal::Variable(_))
                && value.variables_free()
                && let Err((at, problem)) = coerce(arg_ty, &value.resolve(&Map::new()))
            {
                let at = if at.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", at.join("."))
                };
                errors.push(GraphQlError::at(
                    format!(
                        "Argument '{arg}' on Field '{}' has an invalid value{at}: {problem}",
                        sel.name
                    ),
                    sel.pos,
                    &here,
                ));
            }
        }
        for (arg, arg_ty) in def.args {
            if arg_ty.ends_with('!') && !sel.arguments.iter().any(|(a, _)| a == arg) {
                errors.push(GraphQlError::at(
                    format!("Field '{}' is missing required arguments: {arg}", sel.name),
                    sel.pos,
                    &here,
                ));
            }
        }
        match def.returns {
            Returns::Object(ty) if sel.selections.is_empty() => errors.push(GraphQlError::at(
                format!(
                    "Field must have selections (field '{}' returns {ty} but has no selections. Did you mean '{} {{ ... }}'?)",
                    sel.name, sel.name
                ),
                sel.pos,
                &here,
            )),
            Returns::Object(ty) => {
                check_selections(ty, &sel.selections, op, op_name, &here, used, errors)
            }
            Returns::Scalar(ty) if !sel.selections.is_empty() => {
                let names: Vec<&str> = sel.selections.iter().map(|s| s.name.as_str()).collect();
                errors.push(GraphQlError::at(
                    format!(
                        "Selections can't be made on scalars (field '{}' returns {ty} but has selections [{}])",
                        sel.name,
                        names.join(", ")
                    ),
                    sel.pos,
                    &here,
                ));
            }
            Returns::Scalar(_) => {}
        }
    }
}

impl Literal {
    fn variables_free(&self) -> bool {
        let mut names = Vec::new();
        self.variables(&mut names);
        names.is_empty()
    }
}

/// Checks a value against an input type; on failure, where (field path) and why.
fn coerce(ty: &str, value: &Value) -> Result<(), (Vec<String>, String)> {
    let (inner, required) = split_non_null(ty);
    if value.is_null() {
        return if required {
            Err((Vec::new(), "Expected value to not be null".into()))
        } else {
            Ok(())
        };
    }
    if let Some(item) = inner.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let items = match value {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        };
        for (i, v) in items.iter().enumerate() {
            coerce(item, v).map_err(|(mut at, why)| {
                at.insert(0, i.to_string());
                (at, why)
            })?;
        }
        return Ok(());
    }
    let wrong = |what: &str| {
        Err((
            Vec::new(),
            format!("Could not coerce value {value} to {what}"),
        ))
    };
    match inner {
        "String"
        | "Time"
        | "IterationsCadenceID"
        | "DesignManagementDesignID"
        | "DesignManagementVersionID" => match value {
            Value::String(_) => Ok(()),
            _ => wrong(inner),
        },
        "ID" => match value {
            Value::String(_) | Value::Number(_) => Ok(()),
            _ => wrong(inner),
        },
        "Int" => match value.as_i64() {
            Some(n) if i32::try_from(n).is_ok() => Ok(()),
            _ => wrong(inner),
        },
        "Float" => match value {
            Value::Number(_) => Ok(()),
            _ => wrong(inner),
        },
        "Boolean" => match value {
            Value::Bool(_) => Ok(()),
            _ => wrong(inner),
        },
        other => {
            if let Some((_, values)) = ENUMS.iter().find(|(name, _)| *name == other) {
                return match value.as_str() {
                    Some(v) if values.contains(&v) => Ok(()),
                    _ => Err((
                        Vec::new(),
                        format!("Expected {value} to be one of: {}", values.join(", ")),
                    )),
                };
            }
            let Some(fields) = input_fields_of(other) else {
                return wrong(other);
            };
            let Value::Object(given) = value else {
                return wrong(other);
            };
            for key in given.keys() {
                if !fields.iter().any(|(f, _)| f == key) {
                    return Err((
                        vec![key.clone()],
                        format!("Field is not defined on {other}"),
                    ));
                }
            }
            for (field, field_ty) in fields {
                coerce(field_ty, given.get(*field).unwrap_or(&Value::Null)).map_err(
                    |(mut at, why)| {
                        at.insert(0, field.to_string());
                        (at, why)
                    },
                )?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::document::parse;
    use serde_json::json;

    fn problems(doc: &str, variables: Value) -> Vec<String> {
        let op = parse(doc).unwrap().remove(0);
        let vars = variables.as_object().cloned().unwrap_or_default();
        validate(&op, &vars)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn a_well_formed_query_and_mutation_pass() {
        let q = "query($p: ID!, $after: String) { group(fullPath: $p) { iterations(includeAncestors: false, first: 100, after: $after) { nodes { id iid iterationCadence { id } } pageInfo { hasNextPage endCursor } } } }";
        assert!(problems(q, json!({"p": "acme"})).is_empty());
        let m = "mutation($input: iterationCreateInput!) { iterationCreate(input: $input) { iteration { id } errors } }";
        assert!(
            problems(
                m,
                json!({"input": {"groupPath": "a", "startDate": "2024-01-01", "dueDate": "2024-01-14"}})
            )
            .is_empty()
        );
    }

    #[test]
    fn unknown_fields_and_arguments_are_named_as_graphql_ruby_names_them() {
        let p = problems(
            "{ group(fullPath: \"a\") { iterationCadences(archived: true) { nodes { id name } } } }",
            json!({}),
        );
        assert_eq!(
            p,
            [
                "Field 'iterationCadences' doesn't accept argument 'archived'",
                "Field 'name' doesn't exist on type 'IterationCadence'"
            ]
        );
        let p = problems("{ group { id } projects { id } }", json!({}));
        assert_eq!(
            p,
            [
                "Field 'group' is missing required arguments: fullPath",
                "Field 'projects' doesn't exist on type 'Query'"
            ]
        );
        let p = problems(
            "{ group(fullPath: \"a\") { iterations { nodes { title { x } } } } }",
            json!({}),
        );
        assert!(
            p[0].starts_with("Selections can't be made on scalars"),
            "{p:?}"
        );
        let p = problems("{ group(fullPath: \"a\") }", json!({}));
        assert!(p[0].starts_with("Field must have selections"), "{p:?}");
    }

    #[test]
    fn variables_are_declared_typed_and_fit_their_input_type() {
        let p = problems(
            "mutation($input: IterationCreateInput!) { iterationCreate(input: $input) { errors } }",
            json!({"input": {}}),
        );
        assert_eq!(
            p[0],
            "IterationCreateInput isn't a defined input type (on $input)"
        );
        let p = problems("query { group(fullPath: $p) { id } }", json!({}));
        assert_eq!(
            p,
            ["Variable $p is used by anonymous query but not declared"]
        );
        let p = problems(
            "query($p: String!) { group(fullPath: $p) { id } }",
            json!({"p": "a"}),
        );
        assert_eq!(
            p,
            ["Type mismatch on variable $p and argument fullPath (String! / ID!)"]
        );
        let p = problems(
            "mutation M($input: IterationCadenceCreateInput!) { iterationCadenceCreate(input: $input) { errors } }",
            json!({"input": {"groupPath": "a", "active": true}}),
        );
        assert_eq!(
            p,
            [
                "Variable $input of type IterationCadenceCreateInput! was provided invalid value for automatic (Expected value to not be null)"
            ]
        );
        let p = problems(
            "mutation($input: iterationCreateInput!) { iterationCreate(input: $input) { errors } }",
            json!({"input": {"groupPath": "a", "cadenceId": "x"}}),
        );
        assert_eq!(
            p,
            [
                "Variable $input of type iterationCreateInput! was provided invalid value for cadenceId (Field is not defined on iterationCreateInput)"
            ]
        );
    }
}
