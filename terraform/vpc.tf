# Optional: the functions in the caller's VPC, and endpoints so they reach AWS without internet.
# Calls to the copy region (enable_cross_region_copy) and to Slack still need a NAT route.
#
# A VPC holds one private-DNS interface endpoint per service, and a route table one
# gateway route per service: endpoints that already exist there (central ones, or another
# instance's) are named in existing_vpc_endpoint_services, and the module creates the rest.

locals {
  # Decided by the subnet list's length, which is known at plan time even when the
  # subnets are created in the same apply (vpc_id may not be).
  in_vpc = length(var.subnet_ids) > 0

  vpc_endpoint_services = toset(["rds", "sns", "monitoring", "logs", "states", "kms", "sts", "sqs", "scheduler", "s3"])
  missing_endpoint_services = (
    var.enable_vpc_endpoints ? setsubtract(local.vpc_endpoint_services, var.existing_vpc_endpoint_services) : toset([])
  )
  interface_endpoints = setsubtract(local.missing_endpoint_services, ["s3"])

  function_security_group_ids = (
    length(var.lambda_security_group_ids) > 0 ? var.lambda_security_group_ids : aws_security_group.lambda[*].id
  )
  # The interface endpoints' groups: the caller's (the VPC's existing endpoints), or one of the module's.
  create_endpoint_security_group = length(local.interface_endpoints) > 0 && length(var.vpc_endpoint_security_group_ids) == 0
}

resource "aws_security_group" "lambda" {
  count = local.in_vpc && length(var.lambda_security_group_ids) == 0 ? 1 : 0

  name        = "${local.prefix}-backup-functions"
  description = "database-backup functions of ${local.prefix}: HTTPS out only"
  vpc_id      = var.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to AWS APIs and the Slack webhook"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "endpoints" {
  count = local.create_endpoint_security_group ? 1 : 0

  name        = "${local.prefix}-backup-endpoints"
  description = "Interface endpoints used by the ${local.prefix} backup functions"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "HTTPS from the backup functions"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    security_groups = local.function_security_group_ids
  }
}

# The functions admitted to the existing endpoints' groups: one rule per group and
# function group, removed with the module (the groups themselves are the caller's).
resource "aws_vpc_security_group_ingress_rule" "existing_endpoints" {
  count = length(var.vpc_endpoint_security_group_ids) * length(local.function_security_group_ids)

  security_group_id            = var.vpc_endpoint_security_group_ids[floor(count.index / length(local.function_security_group_ids))]
  referenced_security_group_id = local.function_security_group_ids[count.index % length(local.function_security_group_ids)]
  description                  = "HTTPS from the ${local.prefix} backup functions"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  tags                         = local.tags
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.subnet_ids
  security_group_ids  = local.create_endpoint_security_group ? aws_security_group.endpoints[*].id : var.vpc_endpoint_security_group_ids
  private_dns_enabled = true
  tags                = merge(local.tags, { Name = "${local.prefix}-backup-${each.key}" })
}

data "aws_route_tables" "vpc" {
  count  = contains(local.missing_endpoint_services, "s3") ? 1 : 0
  vpc_id = var.vpc_id
}

resource "aws_vpc_endpoint" "s3" {
  count = contains(local.missing_endpoint_services, "s3") ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = data.aws_route_tables.vpc[0].ids
  tags              = merge(local.tags, { Name = "${local.prefix}-backup-s3" })
}
