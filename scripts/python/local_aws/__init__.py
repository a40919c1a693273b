"""The local AWS: moto, behind a gateway that runs the deployed Lambda
functions for real, answers the calls moto lacks, injects faults and collects
Slack messages. Start it with `scripts/local-aws start`."""
