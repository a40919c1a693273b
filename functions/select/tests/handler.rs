use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};
use aws_smithy_mocks::{Rule, mock};
use backup_core::Error;
use backup_core::contract::Function;
use backup_core::rds::Rds;
use backup_core::run::{FIELDS, RunPlan};
use backup_core::selection::Criteria;
use backup_core::testing::{assert_reads_its_contracted_environment, execution, fixture, mock_rds};
use backup_select::Config;
use serde_json::{Value, json};

/// The handler of a module that names its databases: it makes no AWS call (the mock has no rule).
fn handle(event: Value) -> Result<RunPlan, Error> {
    select(&mock_rds(&[]), Criteria::default(), event)
}

fn select(rds: &Rds, criteria: Criteria, event: Value) -> Result<RunPlan, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(backup_select::handle(rds, &Config::new(criteria)?, event))
}

fn tagged(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// The region's databases, in two pages of instances (as RDS pages them) and one of clusters.
fn the_region() -> [Rule; 3] {
    let instance = |id: &str, tags: &[(&str, &str)]| {
        DbInstance::builder()
            .db_instance_identifier(id)
            .engine("postgres")
            .set_tag_list(Some(tagged(tags)))
            .build()
    };
    [
        mock!(aws_sdk_rds::Client::describe_db_instances)
            .match_requests(|r| r.marker().is_none())
            .then_output(move || {
                DescribeDbInstancesOutput::builder()
                    .db_instances(instance("orders", &[("backup", "daily"), ("team", "shop")]))
                    .db_instances(instance(
                        "ledger",
                        &[("backup", "daily"), ("backup-skip", "legal-hold")],
                    ))
                    .marker("page-2")
                    .build()
            }),
        mock!(aws_sdk_rds::Client::describe_db_instances)
            .match_requests(|r| r.marker() == Some("page-2"))
            .then_output(move || {
                DescribeDbInstancesOutput::builder()
                    .db_instances(instance("scratch", &[("team", "shop")]))
                    // A member of an Aurora cluster: its cluster is snapshotted, not it.
                    .db_instances(
                        DbInstance::builder()
                            .db_instance_identifier("reports-instance-1")
                            .db_cluster_identifier("reports")
                            .engine("aurora-postgresql")
                            .set_tag_list(Some(tagged(&[("backup", "daily")])))
                            .build(),
                    )
                    .build()
            }),
        mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("reports")
                        .engine("aurora-postgresql")
                        .set_tag_list(Some(tagged(&[("backup", "daily")])))
                        .build(),
                )
                // DocumentDB answers RDS's API too; RDS snapshots do not back it up.
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("catalog")
                        .engine("docdb")
                        .set_tag_list(Some(tagged(&[("backup", "daily")])))
                        .build(),
                )
                .build()
        }),
    ]
}

fn criteria(value: Value) -> Criteria {
    serde_json::from_value(value).unwrap()
}

#[test]
fn tagged_databases_are_selected_at_each_run_after_the_named_ones_and_the_excluded_are_listed() {
    let rules = the_region();
    let rds = mock_rds(&rules.iter().collect::<Vec<_>>());
    let plan = select(
        &rds,
        criteria(json!({"tags": {"backup": "daily"}, "exclude_tags": {"backup-skip": "*"}})),
        fixture("select-request.json"),
    )
    .unwrap();
    assert_eq!(
        plan.databases,
        ["prod-database-1", "prod-database-2", "orders", "reports"]
    );
    let reasons: Vec<(&str, Vec<String>)> = plan
        .selection
        .selected
        .iter()
        .map(|g| (g.reason.as_str(), g.databases.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "named in rds_instance_ids or rds_cluster_ids",
                vec!["prod-database-1".to_owned(), "prod-database-2".to_owned()]
            ),
            ("tags backup=daily", vec!["orders".to_owned(), "reports".to_owned()]),
        ]
    );
    assert_eq!(plan.selection.excluded[0].databases, ["ledger"]);
    assert_eq!(
        plan.selection.excluded[0].reason,
        "tags backup=daily, but carries exclude tag backup-skip=*"
    );
    assert_eq!(plan.selection.unmatched, 1); // scratch
    // Every page read, both kinds listed.
    assert_eq!(rules.iter().map(Rule::num_calls).collect::<Vec<_>>(), [1, 1, 1]);
}

#[test]
fn the_input_chooses_among_the_selected_and_one_outside_is_refused_by_name() {
    let rules = the_region();
    let rds = mock_rds(&rules.iter().collect::<Vec<_>>());
    let by_pattern = criteria(json!({"patterns": ["or.*", "rep.+"]}));
    let plan = select(&rds, by_pattern.clone(), event(json!({"db_instance_ids": ["ORDERS"]}))).unwrap();
    assert_eq!(plan.databases, ["ORDERS"]);
    let err = select(&rds, by_pattern, event(json!({"db_instance_ids": ["scratch"]}))).unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert!(
        err.to_string().starts_with(
            "input db_instance_ids is invalid: names scratch outside the module's databases \
             (prod-database-1, prod-database-2, orders, reports)"
        ),
        "{err}"
    );
}

#[test]
fn a_selection_that_selects_nothing_fails_the_run_saying_so() {
    let rules = the_region();
    let rds = mock_rds(&rules.iter().collect::<Vec<_>>());
    let mut event = fixture("select-request.json");
    event["defaults"]["db_instance_ids"] = json!([]);
    let err = select(
        &rds,
        criteria(json!({"tags": {"backup": "daily"}, "exclude_tags": {"backup": "*"}})),
        event,
    )
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "ConfigError");
    assert_eq!(
        err.to_string(),
        "configuration selection is invalid: selects no database: the module names none, and of the region's \
         4 databases 3 matched selection_tags and db_identifier_patterns, each left out by exclude_tags"
    );
}

#[test]
fn it_reads_its_contracted_environment_and_refuses_a_bad_pattern_at_start() {
    assert_reads_its_contracted_environment(Function::Select, Config::from_env);
    let err = Config::from_env(&std::collections::BTreeMap::from([(
        "SELECTION".to_owned(),
        r#"{"patterns": ["prod-(" ]}"#.to_owned(),
    )]))
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "ConfigError");
    assert!(err.to_string().contains("prod-( is not a regular expression"), "{err}");
}

/// The fixture event with `input` as the execution input.
fn event(input: Value) -> Value {
    let mut event = fixture("select-request.json");
    event["input"] = input;
    event
}

#[test]
fn an_empty_input_runs_with_the_module_settings() {
    let plan = handle(fixture("select-request.json")).unwrap();
    assert_eq!(plan.databases, ["prod-database-1", "prod-database-2"]);
    assert!(!plan.skip_prune);
    assert_eq!(
        Value::Object(plan.database_config),
        json!({"skip_export": false, "skip_copy": false, "skip_vault": true, "poll_interval_seconds": 60,
               "export_poll_interval_seconds": 300, "snapshot_wait_timeout_seconds": 21600,
               "export_wait_timeout_seconds": 86400, "copy_wait_timeout_seconds": 21600})
    );
    assert_eq!(
        (
            plan.prune.retention_days,
            plan.prune.min_snapshots_to_keep,
            plan.prune.dry_run
        ),
        (Some(30), Some(3), Some(false))
    );
    assert_eq!(plan.prune.execution, execution());
    assert_eq!(plan.prune.include_destination, None);
}

#[test]
fn each_input_field_overrides_its_default_alone() {
    let plan = handle(event(json!({
        "db_instance_ids": ["prod-database-1"], "dry_run": true, "skip_prune": true,
        "export_poll_interval_seconds": 5, "export_wait_timeout_seconds": 3600,
    })))
    .unwrap();
    assert_eq!(plan.databases, ["prod-database-1"]);
    assert_eq!(plan.prune.dry_run, Some(true));
    assert_eq!(plan.prune.retention_days, Some(30));
    assert!(plan.skip_prune);
    assert_eq!(plan.database_config["export_poll_interval_seconds"], 5);
    assert_eq!(plan.database_config["poll_interval_seconds"], 60);
}

#[test]
fn databases_outside_the_module_are_refused_by_name() {
    // RDS identifiers are case-insensitive: the module's own, in any case, pass.
    let plan = handle(event(json!({"db_instance_ids": ["PROD-DATABASE-2"]}))).unwrap();
    assert_eq!(plan.databases, ["PROD-DATABASE-2"]);

    let err = handle(event(
        json!({"db_instance_ids": ["prod-database-1", "prod-database-9"]}),
    ))
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert_eq!(
        err.to_string(),
        "input db_instance_ids is invalid: names prod-database-9 outside the module's databases \
         (prod-database-1, prod-database-2): the functions may back up only those; add it to \
         rds_instance_ids or rds_cluster_ids, or tag it with selection_tags, and apply"
    );
}

#[test]
fn an_interval_longer_than_its_wait_bound_is_refused() {
    // The first poll comes one interval in: past a bound of 10 minutes, it could only time out.
    let err = handle(event(
        json!({"poll_interval_seconds": 3600, "snapshot_wait_timeout_seconds": 600}),
    ))
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert_eq!(
        err.to_string(),
        "input poll_interval_seconds is invalid: poll_interval_seconds 3600 exceeds snapshot_wait_timeout_seconds 600: \
         a wait's first poll comes one interval after it begins"
    );
    let err = handle(event(json!({"export_wait_timeout_seconds": 120}))).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("input export_wait_timeout_seconds is invalid: export_poll_interval_seconds"),
        "{err}"
    );
    // A skipped export's bound is not waited for.
    handle(event(json!({"export_wait_timeout_seconds": 120, "skip_export": true}))).unwrap();
}

#[test]
fn every_field_goes_to_exactly_one_part_of_the_plan() {
    let plan = serde_json::to_value(handle(fixture("select-request.json")).unwrap()).unwrap();
    for field in FIELDS {
        let found = [
            plan["database_config"].get(field.name).is_some(),
            plan["prune"].get(field.name).is_some(),
            plan.get(field.name).is_some(),
            field.name == "db_instance_ids" && plan.get("databases").is_some(),
        ];
        assert_eq!(found.iter().filter(|f| **f).count(), 1, "{}", field.name);
    }
}

#[test]
fn a_bad_input_is_refused_naming_the_field() {
    let whole = "must be a whole number from 1 to 4294967295";
    let list = "must be a non-empty list of DB instance or Aurora cluster identifiers";
    let cases = [
        (
            json!({"dry_run": "yes"}),
            "input dry_run is invalid: must be true or false, not \"yes\"".to_owned(),
        ),
        (
            json!({"skip_copy": null}),
            "input skip_copy is invalid: must be true or false, not null".to_owned(),
        ),
        (
            json!({"retention_days": 0}),
            format!("input retention_days is invalid: {whole}, not 0"),
        ),
        (
            json!({"retention_days": -1}),
            format!("input retention_days is invalid: {whole}, not -1"),
        ),
        (
            json!({"retention_days": 1.5}),
            format!("input retention_days is invalid: {whole}, not 1.5"),
        ),
        (
            json!({"retention_days": "30"}),
            format!("input retention_days is invalid: {whole}, not \"30\""),
        ),
        (
            json!({"poll_interval_seconds": 3601}),
            "input poll_interval_seconds is invalid: must be a whole number of seconds from 1 to 3600, not 3601"
                .to_owned(),
        ),
        // A wait's polls beat its task's heartbeat at least every 3 hours; its history stays
        // within Step Functions' 25,000 events only up to the module's longest bound.
        (
            json!({"export_wait_timeout_seconds": 604_801}),
            "input export_wait_timeout_seconds is invalid: must be a whole number of seconds from 60 to 604800 \
             (7 days), not 604801"
                .to_owned(),
        ),
        (
            json!({"snapshot_wait_timeout_seconds": 59}),
            "input snapshot_wait_timeout_seconds is invalid: must be a whole number of seconds from 60".to_owned(),
        ),
        (
            json!({"db_instance_ids": []}),
            format!("input db_instance_ids is invalid: {list}, not []"),
        ),
        (
            json!({"db_instance_ids": {"id": "db1"}}),
            format!("input db_instance_ids is invalid: {list}"),
        ),
        (
            json!({"db_instance_ids": ["db1", 2]}),
            format!("input db_instance_ids is invalid: {list}"),
        ),
        (
            json!({"retention_day": 7}),
            "input retention_day is invalid: is not a field of the execution input".to_owned(),
        ),
        (
            json!(["db1"]),
            "input $ is invalid: must be a JSON object of the fields db_instance_ids, retention_days".to_owned(),
        ),
    ];
    for (input, expected) in cases {
        let err = handle(event(input.clone())).unwrap_err();
        assert_eq!(err.error_type().as_str(), "InvalidInput", "{input}");
        assert!(
            err.to_string().starts_with(&expected),
            "{err} does not start with {expected}"
        );
    }
}

#[test]
fn a_long_refused_value_is_quoted_shortened() {
    let ids: Vec<Value> = (0..100).map(|i| json!({ "id": format!("database-{i}") })).collect();
    let err = handle(event(json!({ "db_instance_ids": ids })))
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("..."), "{err}");
    assert!(err.len() < 300, "{err}");
}

#[test]
fn a_wrong_module_configuration_is_a_config_error() {
    let mut missing = fixture("select-request.json");
    missing["defaults"].as_object_mut().unwrap().remove("retention_days");
    let mut unknown = fixture("select-request.json");
    unknown["defaults"]["colour"] = json!("blue");
    let mut wrong = fixture("select-request.json");
    wrong["defaults"]["dry_run"] = json!("no");
    for (event, field) in [
        (missing, "defaults.retention_days"),
        (unknown, "defaults.colour"),
        (wrong, "defaults.dry_run"),
    ] {
        let err = handle(event).unwrap_err();
        assert_eq!(err.error_type().as_str(), "ConfigError");
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn a_malformed_request_is_the_modules_fault_not_the_inputs() {
    let mut event = fixture("select-request.json");
    event.as_object_mut().unwrap().remove("execution");
    let err = handle(event).unwrap_err();
    assert_eq!(err.error_type().as_str(), "ConfigError");
    assert_eq!(
        err.to_string(),
        "configuration select's request: execution is invalid: is required"
    );
}

#[test]
fn a_whole_number_written_as_a_float_is_that_number() {
    let plan = handle(event(json!({"retention_days": 30.0, "poll_interval_seconds": 5.0,
                                   "snapshot_wait_timeout_seconds": 3600, "copy_wait_timeout_seconds": 3600})))
    .unwrap();
    assert_eq!(plan.prune.retention_days, Some(30));
    assert_eq!(plan.database_config["poll_interval_seconds"], json!(5));
    assert!(plan.database_config["poll_interval_seconds"].is_u64());
}

#[test]
fn an_input_cannot_turn_on_a_part_the_module_is_not_configured_for() {
    // The fixture's module has a copy region and no vault.
    let err = handle(event(json!({"skip_vault": false}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input skip_vault is invalid: is false, but the module has no vault (its vault variable is null): configure it and apply"
    );
    let mut request = fixture("select-request.json");
    request["defaults"]["skip_copy"] = json!(true);
    request["input"] = json!({"skip_copy": false});
    let err = handle(request).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "skip_copy"),
        "{err}"
    );
    // Skipping what the module has, or confirming what it does not, is fine.
    handle(event(json!({"skip_copy": true, "skip_vault": true}))).unwrap();
}
