"""The single source of truth for what "read-only" means for CloudWizard's AWS access."""

from __future__ import annotations

# An action is a read when its name starts with one of these verbs followed by a capitalised word
# ("GetBucketPolicy", never "Getaway"). Anything else — every write, every Start*/Invoke*/Lookup*/
# Search* verb — is refused unless it is listed explicitly below. cloudtrail:LookupEvents is deliberately
# not allowed: event history echoes request parameters, and no check needs it; add it to ALLOWED_EXTRA
# (and a collector's declaration) when one does.
READ_ONLY_PREFIXES: tuple[str, ...] = ("Describe", "List", "Get", "BatchGet")

# Reads whose verb is not one of the prefixes, each with why it is safe and why we need it.
ALLOWED_EXTRA: dict[str, str] = {
    "iam:GenerateCredentialReport": "only (re)builds the account credential report that GetCredentialReport "
    "reads; changes no identity, and the report holds no secrets",
    "iam:GenerateServiceLastAccessedDetails": "starts the last-accessed report job that "
    "GetServiceLastAccessedDetails reads, for unused-permission checks",
    "apigateway:GET": "API Gateway authorizes every read as the HTTP verb GET; the operations that could "
    "return key values are blocked by SECRET_PARAMETERS",
}

# Actions that look like reads (or slip in through SecurityAudit's wildcards) but return customer DATA,
# secrets or credentials, or are not reads at all. Refused by the client guard even when a read verb
# matches, and denied explicitly in the customer role (cfn/cloudwizard-role.yaml) so that neither
# SecurityAudit nor a future AWS change to it can grant them. IAM action names; "*" and "?" are IAM
# wildcards. Each value says why.
#
# Reads we allow although their answers can embed secrets the customer put in configuration
# (lambda:GetFunctionConfiguration and ecs:DescribeTaskDefinition environment variables,
# ec2:DescribeInstanceAttribute user data, codebuild:BatchGetProjects environment): posture checks need
# them, and collectors must keep only variable names and detector verdicts, never values.
DATA_PLANE_DENY: dict[str, str] = {
    # Amazon S3 object contents
    "s3:GetObject": "object contents (also authorizes HeadObject and S3 Select)",
    "s3:GetObjectVersion": "contents of a specific object version",
    "s3:GetObjectTorrent": "object contents as a torrent",
    "s3:GetObjectVersionTorrent": "object version contents as a torrent",
    "s3:GetObjectAttributes": "object checksums and sizes: enough to confirm guessed contents",
    "s3:GetObjectVersionAttributes": "object version checksums and sizes",
    "s3:GetObjectVersionForReplication": "object contents for replication",
    "s3:GetDataAccess": "S3 Access Grants vends temporary credentials for object data",
    "s3-object-lambda:*": "object contents through an Object Lambda access point",
    "s3express:CreateSession": "session credentials for directory-bucket object data",
    # DynamoDB / DAX items
    "dynamodb:GetItem": "table items",
    "dynamodb:BatchGetItem": "table items",
    "dynamodb:Query": "table items",
    "dynamodb:Scan": "table items",
    "dynamodb:PartiQLSelect": "table items through PartiQL (ExecuteStatement / BatchExecuteStatement)",
    "dynamodb:GetRecords": "stream records carry item images",
    "dynamodb:GetShardIterator": "only purpose is reading stream records",
    "dax:GetItem": "cached table items",
    "dax:BatchGetItem": "cached table items",
    "dax:Query": "cached table items",
    "dax:Scan": "cached table items",
    # Secrets and parameters
    "secretsmanager:GetSecretValue": "secret values",
    "secretsmanager:BatchGetSecretValue": "secret values",
    "ssm:GetParameter": "parameter values, often SecureString secrets",
    "ssm:GetParameters": "parameter values",
    "ssm:GetParametersByPath": "parameter values",
    "ssm:GetParameterHistory": "past parameter values",
    "ssm:GetCommandInvocation": "Run Command output from instances",
    "ssm:ListCommandInvocations": "returns Run Command output when Details is set",
    # KMS cryptographic use
    "kms:Decrypt": "plaintext of encrypted data",
    "kms:GenerateDataKey*": "plaintext data keys",
    "kms:ReEncrypt*": "re-encrypts customer ciphertext under another key",
    # CloudWatch Logs contents
    "logs:GetLogEvents": "log lines",
    "logs:FilterLogEvents": "log lines",
    "logs:GetLogRecord": "a full log record",
    "logs:GetQueryResults": "Logs Insights results are log lines",
    "logs:StartQuery": "runs a Logs Insights query over log lines",
    "logs:StartLiveTail": "streams log lines",
    "logs:Unmask": "reveals data masked by a data protection policy",
    # Queues and streams
    "sqs:ReceiveMessage": "message bodies (and hides them from real consumers)",
    "kinesis:GetRecords": "stream records",
    "kinesis:GetShardIterator": "only purpose is reading stream records",
    "kinesis:SubscribeToShard": "pushes stream records",
    "kinesisvideo:GetMedia": "video stream contents",
    "kinesisvideo:GetMediaForFragmentList": "video stream contents",
    "kinesisvideo:GetClip": "video stream contents",
    "kinesisvideo:GetImages": "frames from video streams",
    "kinesisvideo:GetHLSStreamingSessionURL": "a playback URL for video contents",
    "kinesisvideo:GetDASHStreamingSessionURL": "a playback URL for video contents",
    # Code, images and artifacts
    "lambda:GetFunction": "returns a presigned URL to the deployment package; collectors use "
    "GetFunctionConfiguration",
    "lambda:GetLayerVersion": "returns a presigned URL to the layer archive",
    "ecr:GetDownloadUrlForLayer": "image layer contents",
    "ecr:BatchGetImage": "image manifests, the first step of a pull",
    "ecr:GetAuthorizationToken": "registry credentials to pull images",
    "ecr-public:GetAuthorizationToken": "registry credentials",
    "codecommit:GetBlob": "repository file contents",
    "codecommit:GetFile": "repository file contents",
    "codecommit:GetFolder": "repository tree contents",
    "codecommit:GitPull": "clones repository contents",
    "codeartifact:GetAuthorizationToken": "package repository credentials",
    "codeartifact:GetPackageVersionAsset": "package contents",
    "codeartifact:ReadFromRepository": "package contents",
    "cloudformation:GetTemplate": "template bodies can hold plaintext defaults and secrets; checks use the "
    "deployed resources and DescribeStacks (which masks NoEcho parameters)",
    "cloudformation:GetTemplateSummary": "returns template parameter defaults",
    "config:DeliverConfigSnapshot": "SecurityAudit grants config:Deliver*; it writes a snapshot, not a read",
    "amplify:GetArtifactUrl": "a presigned URL to build artifacts",
    # Databases, analytics and query results
    "rds-data:*": "SQL over the RDS Data API",
    "rds-db:connect": "database login with IAM authentication",
    "rds:DownloadDBLogFilePortion": "database log contents (granted by SecurityAudit)",
    "rds:DownloadCompleteDBLogFile": "database log contents",
    "redshift:GetClusterCredentials": "temporary database credentials",
    "redshift:GetClusterCredentialsWithIAM": "temporary database credentials",
    "redshift-serverless:GetCredentials": "temporary database credentials",
    "redshift-data:GetStatementResult": "SQL result rows",
    "athena:GetQueryResults": "SQL result rows",
    "athena:GetQueryResultsStream": "SQL result rows",
    "glacier:GetJobOutput": "archive contents",
    "cloudtrail:GetQueryResults": "CloudTrail Lake query rows",
    "es:ESHttp*": "OpenSearch index data",
    "neptune-db:ReadDataViaQuery": "graph data",
    "sagemaker:GetRecord": "Feature Store records",
    "sagemaker:BatchGetRecord": "Feature Store records",
    "ebs:GetSnapshotBlock": "raw snapshot disk blocks",
    "xray:BatchGetTraces": "traces carry request data",
    "xray:GetTraceSummaries": "traces carry request annotations",
    "states:DescribeExecution": "execution input and output documents",
    "states:GetExecutionHistory": "execution input and output documents",
    "iot:GetThingShadow": "device state data",
    "iot:GetRetainedMessage": "MQTT message payloads",
    "iot:ListRetainedMessages": "MQTT message topics from devices",
    "mediastore:GetObject": "media contents",
    "mobiletargeting:GetUserEndpoints": "end-user contact data",
    "mobiletargeting:GetEndpoint": "end-user contact data",
    "cognito-idp:ListUsers": "end-user profiles (emails, phone numbers)",
    "cognito-idp:ListUsersInGroup": "end-user profiles",
    "cognito-idp:AdminGetUser": "an end-user profile",
    "cognito-idp:DescribeUserPoolClient": "returns the app client secret",
    "connect:GetContactAttributes": "customer contact data",
    "appsync:ListApiKeys": "the returned key id is the API key itself",
    "ivs:GetStreamKey": "the stream key value",
    "ivs:BatchGetStreamKey": "stream key values",
    "amplify:GetApp": "returns basicAuthCredentials and environment variables",
    "amplify:ListApps": "returns basicAuthCredentials and environment variables",
    "amplify:GetBranch": "returns branch basicAuthCredentials",
    "amplify:ListBranches": "returns branch basicAuthCredentials",
    # Compute secrets
    "ec2:GetPasswordData": "encrypted Windows administrator password",
    "ec2:GetConsoleOutput": "instance console output, often with secrets from boot scripts",
    "ec2:GetConsoleScreenshot": "instance screen contents",
    "ec2:GetLaunchTemplateData": "user data of a running instance",
    "ec2:GetInstanceUefiData": "UEFI variable store contents",
    "ec2:DescribeVpnConnections": "the customer gateway configuration embeds the tunnel pre-shared keys",
    "ec2:GetVpnConnectionDeviceSampleConfiguration": "device configuration with the tunnel pre-shared keys",
    "lightsail:GetInstanceAccessDetails": "temporary SSH keys / RDP passwords",
    "lightsail:GetRelationalDatabaseMasterUserPassword": "database password",
    "lightsail:GetRelationalDatabaseLogEvents": "database log lines",
    "lightsail:GetContainerLog": "container log lines",
    "elasticmapreduce:GetClusterSessionCredentials": "cluster login credentials",
    "elasticmapreduce:GetOnClusterAppUIPresignedURL": "a logged-in URL to cluster applications",
    "elasticmapreduce:GetPersistentAppUIPresignedURL": "a logged-in URL to application history",
    # Credential vending
    "sts:GetSessionToken": "mints new credentials",
    "sts:GetFederationToken": "mints new credentials",
    "sts:GetServiceBearerToken": "mints service bearer tokens",
    "cognito-identity:GetCredentialsForIdentity": "mints credentials",
    "cognito-identity:GetOpenIdToken": "mints identity tokens",
    "cognito-identity:GetOpenIdTokenForDeveloperIdentity": "mints identity tokens",
}

# Reads that return secrets depending on one parameter: "<iam prefix>:<Operation>" -> (parameter, the API's
# default, the only safe value, why). The guard refuses the call unless the effective value is the safe one.
SECRET_PARAMETERS: dict[str, tuple[str, object, object, str]] = {
    "glue:GetConnection": ("HidePassword", False, True, "returns the connection password by default"),
    "glue:GetConnections": ("HidePassword", False, True, "returns connection passwords by default"),
    "apigateway:GetApiKey": ("includeValue", False, False, "includeValue returns the API key"),
    "apigateway:GetApiKeys": ("includeValues", False, False, "includeValues returns the API keys"),
}

# botocore service name -> IAM service prefix, where neither the model's signingName nor its
# endpointPrefix is the IAM prefix.
SERVICE_PREFIX_OVERRIDES: dict[str, str] = {
    "cloudwatch": "cloudwatch",  # endpointPrefix "monitoring"
    "cloudcontrol": "cloudformation",  # signingName "cloudcontrolapi"
    "iot-data": "iot",  # signingName "iotdata"
    "iotevents-data": "iotevents",  # signingName "ioteventsdata"
    "iotsecuretunneling": "iot",  # signingName "IoTSecuredTunneling"
    "iot-jobs-data": "iotjobsdata",  # signingName "iot-jobs-data"
    "partnercentral-selling": "partnercentral",  # signingName "partnercentral-selling"
    "mturk": "mechanicalturk",  # endpointPrefix "mturk-requester"
    "resourcegroupstaggingapi": "tag",  # endpointPrefix "tagging"
    "sso": "sso",  # signingName "awsssoportal"
}

# Services whose IAM action is the HTTP method of the operation (apigateway:GET, apigateway:POST, ...).
HTTP_VERB_SERVICES: frozenset[str] = frozenset({"apigateway"})

# (botocore service name, operation) -> IAM action, where the operation name is not the action name.
# Unlisted operations map to "<iam prefix>:<OperationName>". The guard checks both names against
# DATA_PLANE_DENY, so a missing entry here can only make it stricter, never looser.
OPERATION_ACTION_OVERRIDES: dict[tuple[str, str], str] = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "SelectObjectContent"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "ListDirectoryBuckets"): "s3express:ListAllMyDirectoryBuckets",
    ("s3", "ListMultipartUploads"): "s3:ListBucketMultipartUploads",
    ("s3", "ListParts"): "s3:ListMultipartUploadParts",
    ("s3", "GetBucketAccelerateConfiguration"): "s3:GetAccelerateConfiguration",
    ("s3", "GetBucketAnalyticsConfiguration"): "s3:GetAnalyticsConfiguration",
    ("s3", "ListBucketAnalyticsConfigurations"): "s3:GetAnalyticsConfiguration",
    ("s3", "GetBucketCors"): "s3:GetBucketCORS",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetBucketIntelligentTieringConfiguration"): "s3:GetIntelligentTieringConfiguration",
    ("s3", "ListBucketIntelligentTieringConfigurations"): "s3:GetIntelligentTieringConfiguration",
    ("s3", "GetBucketInventoryConfiguration"): "s3:GetInventoryConfiguration",
    ("s3", "ListBucketInventoryConfigurations"): "s3:GetInventoryConfiguration",
    ("s3", "GetBucketLifecycle"): "s3:GetLifecycleConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "GetBucketMetricsConfiguration"): "s3:GetMetricsConfiguration",
    ("s3", "ListBucketMetricsConfigurations"): "s3:GetMetricsConfiguration",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("lambda", "GetLayerVersionByArn"): "lambda:GetLayerVersion",
    ("redshift-data", "GetStatementResultV2"): "redshift-data:GetStatementResult",
    ("dynamodb", "ExecuteStatement"): "dynamodb:PartiQLSelect",
    ("dynamodb", "BatchExecuteStatement"): "dynamodb:PartiQLSelect",
    ("dynamodb", "ExecuteTransaction"): "dynamodb:PartiQLSelect",
}
