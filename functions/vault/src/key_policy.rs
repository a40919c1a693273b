//! Reading a KMS key policy for what another account may do with the key. The
//! pre-flight check reads the policy of the module's key, which encrypts the
//! snapshots shared with the vault, to name a missing permission once, before
//! any database's copy fails on it with RDS's `KMSKeyNotAccessibleFault`.
//!
//! Statements are read for their effect, principal (`*`, the account, its root,
//! or a role or user of it) and actions (`Action`/`NotAction`, with wildcards).
//! Conditions are not evaluated: a statement that names the account is taken to
//! apply (the module's own policy conditions its grants on
//! `kms:GrantIsForAWSResource` and `kms:ViaService`, which RDS's use satisfies).

use serde_json::Value;

/// What RDS needs of the key of a snapshot shared with an account, for that account
/// to copy it: it creates a grant on the key and decrypts with it ("Allowing access to
/// an AWS KMS key", RDS User Guide, Sharing encrypted snapshots: "add the ARN of the
/// AWS account that you are sharing to as Principal in the KMS key policy. Then allow
/// the kms:CreateGrant action"; the example policy allows Decrypt and DescribeKey too).
pub const SHARED_KEY_ACTIONS: [&str; 3] = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"];

/// The actions of `required` that `policy` does not allow principals of `account`
/// (an explicit Deny naming them wins over any Allow), or why the policy cannot be read.
pub fn missing_actions<'a>(policy: &str, account: &str, required: &[&'a str]) -> Result<Vec<&'a str>, String> {
    let document: Value = serde_json::from_str(policy).map_err(|e| format!("the key policy is not JSON: {e}"))?;
    let statements = listed(document.get("Statement"));
    let concerning = |action: &str, effect: &str| {
        statements.iter().any(|statement| {
            statement.get("Effect").and_then(Value::as_str) == Some(effect)
                && names_account(statement, account)
                && concerns(statement, action)
        })
    };
    Ok(required
        .iter()
        .copied()
        .filter(|action| concerning(action, "Deny") || !concerning(action, "Allow"))
        .collect())
}

/// A policy element that may be one value or a list of them.
fn listed(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item) => vec![item],
        None => Vec::new(),
    }
}

fn names_account(statement: &Value, account: &str) -> bool {
    let principal = match statement.get("Principal") {
        Some(Value::String(any)) => return any == "*",
        Some(principal) => principal.get("AWS"),
        None => return false,
    };
    let root = format!("arn:aws:iam::{account}:root");
    let of_account = format!(":iam::{account}:");
    listed(principal)
        .into_iter()
        .filter_map(Value::as_str)
        .any(|name| name == "*" || name == account || name == root || name.contains(&of_account))
}

fn concerns(statement: &Value, action: &str) -> bool {
    let matches = |key: &str| {
        listed(statement.get(key))
            .into_iter()
            .filter_map(Value::as_str)
            .any(|pattern| wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase()))
    };
    if statement.get("Action").is_some() {
        matches("Action")
    } else {
        statement.get("NotAction").is_some() && !matches("NotAction")
    }
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.len() == value.len() && same_with_any(pattern, value),
        Some((head, tail)) => {
            value.len() >= head.len()
                && same_with_any(head, &value[..head.len()])
                && (head.len()..=value.len()).any(|start| wildcard_match(tail, &value[start..]))
        }
    }
}

fn same_with_any(pattern: &str, value: &str) -> bool {
    pattern.len() == value.len() && pattern.bytes().zip(value.bytes()).all(|(p, v)| p == b'?' || p == v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VAULT: &str = "111111111111";

    fn policy(statements: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }

    fn own_account_only() -> Value {
        json!({"Sid": "Enable IAM policies", "Effect": "Allow",
               "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"})
    }

    #[test]
    fn a_policy_of_the_own_account_only_misses_everything() {
        let missing = missing_actions(&policy(json!([own_account_only()])), VAULT, &SHARED_KEY_ACTIONS).unwrap();
        assert_eq!(missing, SHARED_KEY_ACTIONS);
    }

    #[test]
    fn the_modules_policy_for_the_vault_allows_what_rds_needs() {
        let statements = json!([own_account_only(),
            {"Sid": "VaultUse", "Effect": "Allow", "Principal": {"AWS": [format!("arn:aws:iam::{VAULT}:root")]},
             "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
            {"Sid": "VaultGrants", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{VAULT}:role/copier")},
             "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}]);
        assert!(
            missing_actions(&policy(statements), VAULT, &SHARED_KEY_ACTIONS)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_missing_grant_permission_is_named() {
        let statements = json!([{"Effect": "Allow", "Principal": {"AWS": VAULT},
                                 "Action": ["kms:Decrypt", "kms:Describe*"], "Resource": "*"}]);
        assert_eq!(
            missing_actions(&policy(statements), VAULT, &SHARED_KEY_ACTIONS).unwrap(),
            ["kms:CreateGrant"]
        );
    }

    #[test]
    fn an_explicit_deny_wins() {
        let statements = json!([{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
                                {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}]);
        assert_eq!(
            missing_actions(&policy(statements), VAULT, &SHARED_KEY_ACTIONS).unwrap(),
            ["kms:Decrypt"]
        );
    }

    #[test]
    fn not_action_allows_the_rest() {
        let statements =
            json!([{"Effect": "Allow", "Principal": {"AWS": VAULT}, "NotAction": "kms:Create*", "Resource": "*"}]);
        assert_eq!(
            missing_actions(&policy(statements), VAULT, &SHARED_KEY_ACTIONS).unwrap(),
            ["kms:CreateGrant"]
        );
    }

    #[test]
    fn another_accounts_principal_does_not_count() {
        let statements = json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                                 "Action": "kms:*", "Resource": "*"}]);
        assert_eq!(
            missing_actions(&policy(statements), VAULT, &SHARED_KEY_ACTIONS)
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard_match("kms:*", "kms:decrypt"));
        assert!(wildcard_match("kms:re*crypt*", "kms:reencryptfrom"));
        assert!(wildcard_match("kms:decryp?", "kms:decrypt"));
        assert!(!wildcard_match("kms:create*", "kms:decrypt"));
        assert!(!wildcard_match("kms:decrypt", "kms:decrypts"));
    }

    #[test]
    fn a_policy_that_is_not_json_is_named() {
        assert!(
            missing_actions("{", VAULT, &SHARED_KEY_ACTIONS)
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
