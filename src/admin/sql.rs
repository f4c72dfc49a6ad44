//! A `WHERE` clause of the filters that are set, and nothing else: a filter left empty adds no condition (rather
//! than `$1 IS NULL OR ...`, which keeps the planners from using an index). The SQL text is static; every value
//! is bound.

use sqlx::{Any, any::AnyArguments, query::Query};

#[derive(Debug, Clone)]
pub enum Value {
    Text(String),
    Int(i64),
}

#[derive(Debug, Clone, Default)]
pub struct Where {
    conditions: Vec<String>,
    values: Vec<Value>,
}

impl Where {
    /// Adds `condition`, each `{}` in it standing for the next of `values`.
    pub fn and(&mut self, condition: &str, values: impl IntoIterator<Item = Value>) -> &mut Self {
        let mut condition = condition.to_owned();
        for value in values {
            self.values.push(value);
            condition = condition.replacen("{}", &format!("${}", self.values.len()), 1);
        }
        debug_assert!(!condition.contains("{}"), "a placeholder without a value");
        self.conditions.push(condition);
        self
    }

    /// A placeholder for one more value bound after the conditions' (`LIMIT`).
    pub fn placeholder(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    pub fn sql(&self) -> String {
        if self.conditions.is_empty() {
            "TRUE".to_owned()
        } else {
            self.conditions.join(" AND ")
        }
    }

    pub fn bind<'q>(&self, mut query: Query<'q, Any, AnyArguments<'q>>) -> Query<'q, Any, AnyArguments<'q>> {
        for value in &self.values {
            query = match value {
                Value::Text(s) => query.bind(s.clone()),
                Value::Int(i) => query.bind(*i),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut w = Where::default();
        assert_eq!(w.sql(), "TRUE");
        w.and("a = {}", [Value::Int(1)]);
        w.and("(b = {} OR c = {})", [Value::Text("x".into()), Value::Text("x".into())]);
        let limit = w.placeholder(Value::Int(10));
        assert_eq!(w.sql(), "a = $1 AND (b = $2 OR c = $3)");
        assert_eq!(limit, "$4");
    }
}
