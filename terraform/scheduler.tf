# The waits' polls. A wait is one Step Functions task (statemachine/wait.asl.json);
# wait-for-available polls RDS and schedules its next poll as a one-time EventBridge
# Scheduler schedule in this group (at the time RDS's progress says, deleted once it
# has fired), which invokes the function again through this role. A poll costs no
# state transition.

locals {
  poll_schedule_group = "${local.prefix}-${local.instance_hash}-polls"
  # Its ARN from the name, as the Scheduler forms it, so that the plan shows the role's trust.
  poll_schedule_group_arn = "arn:${local.partition}:scheduler:${local.region}:${local.account}:schedule-group/${local.poll_schedule_group}"
}

resource "aws_scheduler_schedule_group" "polls" {
  name = local.poll_schedule_group
  tags = local.tags
}

resource "aws_iam_role" "poll_scheduler" {
  name                 = "${var.iam_role_name_prefix}${local.prefix}-${local.instance_hash}-poll-scheduler"
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary_arn
  description          = "database-backup: EventBridge Scheduler invokes the next poll of a wait (${local.prefix})"
  assume_role_policy   = data.aws_iam_policy_document.trust["poll_scheduler"].json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "poll_scheduler" {
  statement {
    sid       = "InvokeNextPoll"
    actions   = ["lambda:InvokeFunction"]
    resources = [local.function_arns["wait-for-available"], "${local.function_arns["wait-for-available"]}:*"]
  }
}

resource "aws_iam_role_policy" "poll_scheduler" {
  name   = "invoke-next-poll"
  role   = aws_iam_role.poll_scheduler.id
  policy = data.aws_iam_policy_document.poll_scheduler.json
}
