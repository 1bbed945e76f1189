/* The credential type table for documentation (see core/credential_doc.h).
 * A new provider (the Google methods, for one) adds its types here, after the
 * AWS ones, and its key lists to the drift test in test/unit/test_config.c. */
#include "core/credential_doc.h"

#include <string.h>

#define AUTHORITY_HOST \
	{ \
		"authority_host", \
			"The Entra authority, default AZURE_AUTHORITY_HOST, else " \
			"https://login.microsoftonline.com (sovereign clouds have their own); http:// only for loopback." \
	}
#define AWS_REGION_KEY \
	{ \
		"region", "The region of the STS endpoint used to get credentials; the token's " \
			  "own region comes from the host name or the alias's region=." \
	}

static const struct credential_key_doc managed_keys[] = {
	{ "client_id",
	  "Client id of a user-assigned identity; at most one of client_id, object_id, resource_id; "
	  "none: the system-assigned identity." },
	{ "object_id", "Object (principal) id of a user-assigned identity." },
	{ "resource_id", "Azure resource id of a user-assigned identity." },
	{ "imds_endpoint", "The instance metadata endpoint, default AZURE_POD_IDENTITY_AUTHORITY_HOST, else "
			   "http://169.254.169.254." },
	{ NULL, NULL },
};

static const struct credential_key_doc secret_keys[] = {
	{ "tenant_id", "The directory (tenant) id of the application." },
	{ "client_id", "The application (client) id." },
	{ "client_secret_file", "A file holding the client secret, re-read at each fetch (preferred)." },
	{ "client_secret_env", "The name of an environment variable holding the client secret." },
	{ "client_secret", "The secret inline; warned about when the file is readable by others." },
	AUTHORITY_HOST,
	{ NULL, NULL },
};

static const struct credential_key_doc cert_keys[] = {
	{ "tenant_id", "The directory (tenant) id of the application." },
	{ "client_id", "The application (client) id." },
	{ "certificate_file", "PEM with the private key and certificate, or PKCS#12." },
	{ "certificate_password", "The password of an encrypted key or PKCS#12 file." },
	{ "send_certificate_chain", "1: send the certificate chain (x5c), for subject name / issuer "
				    "authentication." },
	AUTHORITY_HOST,
	{ NULL, NULL },
};

static const struct credential_key_doc workload_keys[] = {
	{ "tenant_id", "The tenant id, default AZURE_TENANT_ID." },
	{ "client_id", "The application or managed identity client id, default AZURE_CLIENT_ID." },
	{ "token_file", "The projected service account token, default AZURE_FEDERATED_TOKEN_FILE; re-read at "
			"every fetch." },
	AUTHORITY_HOST,
	{ NULL, NULL },
};

static const struct credential_key_doc cli_keys[] = {
	{ "tenant_id", "Ask the Azure CLI for a token of this tenant." },
	{ "subscription", "Ask the Azure CLI for a token of this subscription." },
	{ NULL, NULL },
};

static const struct credential_key_doc azure_default_keys[] = {
	{ "exclude",
	  "Sources to skip, comma separated: environment, workload-identity, managed-identity, cli." },
	AUTHORITY_HOST,
	{ "imds_endpoint", "As for azure-managed-identity." },
	{ "managed_identity_client_id", "The user-assigned identity the managed identity source uses." },
	{ "workload_identity_client_id", "The client id the workload identity source uses." },
	{ "workload_identity_tenant_id", "The tenant id the workload identity source uses." },
	{ NULL, NULL },
};

static const struct credential_key_doc aws_default_keys[] = {
	{ "profile", "A profile of the shared files; naming one skips the environment's keys." },
	AWS_REGION_KEY,
	{ NULL, NULL },
};

static const struct credential_key_doc aws_profile_keys[] = {
	{ "profile", "The profile to read, default AWS_PROFILE, else default." },
	AWS_REGION_KEY,
	{ NULL, NULL },
};

static const struct credential_key_doc aws_static_keys[] = {
	{ "access_key_id", "The access key id; without it the keys come from the environment "
			   "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)." },
	{ "secret_access_key_file", "A file holding the secret access key." },
	{ "secret_access_key_env", "The name of an environment variable holding the secret access key." },
	{ "session_token_file", "A file holding the session token of temporary keys." },
	{ "session_token_env", "The name of an environment variable holding the session token." },
	{ NULL, NULL },
};

static const struct credential_key_doc aws_web_keys[] = {
	{ "role_arn", "The role to assume, default AWS_ROLE_ARN." },
	{ "token_file",
	  "The web identity token, default AWS_WEB_IDENTITY_TOKEN_FILE; re-read at every refresh." },
	{ "role_session_name", "The session name, default AWS_ROLE_SESSION_NAME, else one of ours." },
	AWS_REGION_KEY,
	{ NULL, NULL },
};

static const struct credential_key_doc aws_assume_keys[] = {
	{ "role_arn", "The role to assume." },
	{ "source_profile", "The profile whose credentials call AssumeRole; none: the default chain." },
	{ "role_session_name", "The session name." },
	{ "external_id", "The external id the role's trust policy asks for." },
	{ "duration_seconds", "How long the role's credentials last, 900 to 43200." },
	AWS_REGION_KEY,
	{ NULL, NULL },
};

static const struct credential_key_doc aws_process_keys[] = {
	{ "command", "A program printing credentials as credential_process does, split as shell words and run "
		     "without a shell, within token_fetch_timeout." },
	{ NULL, NULL },
};

#define QUOTA_PROJECT \
	{ \
		"quota_project", "The project billed for API calls (x-goog-user-project), default " \
				 "GOOGLE_CLOUD_QUOTA_PROJECT, else the file's quota_project_id." \
	}
#define TOKEN_URI \
	{ \
		"token_uri", "The OAuth token endpoint, default the key file's token_uri, else " \
			     "https://oauth2.googleapis.com/token; http:// only for loopback." \
	}

static const struct credential_key_doc gcp_default_keys[] = {
	QUOTA_PROJECT,
	TOKEN_URI,
	{ "iam_credentials_endpoint", "Accepted for symmetry with gcp-impersonate; an impersonated file names "
				      "its own IAM Credentials URL." },
	{ NULL, NULL },
};

static const struct credential_key_doc gcp_sa_keys[] = {
	{ "key_file", "A service account's JSON key file (read when the configuration is loaded)." },
	TOKEN_URI,
	QUOTA_PROJECT,
	{ NULL, NULL },
};

static const struct credential_key_doc gcp_user_keys[] = {
	{ "file", "gcloud user credentials (an authorized_user JSON file with client_id, client_secret, "
		  "refresh_token)." },
	{ "token_uri", "The OAuth token endpoint, default https://oauth2.googleapis.com/token (the file's own "
		       "token_uri is ignored, as Google's libraries do)." },
	QUOTA_PROJECT,
	{ NULL, NULL },
};

static const struct credential_key_doc gcp_imp_keys[] = {
	{ "target_principal", "The e-mail of the service account to impersonate." },
	{ "delegates", "Service accounts of a delegation chain, comma separated." },
	{ "lifetime", "Seconds the impersonated token lasts, default 3600." },
	{ "source",
	  "The credential whose token calls IAM Credentials; none: Application Default Credentials." },
	{ "iam_credentials_endpoint", "Default https://iamcredentials.googleapis.com." },
	QUOTA_PROJECT,
	{ "token_uri", "The token endpoint of the default source, as for gcp-default." },
	{ NULL, NULL },
};

static const struct credential_key_doc gcp_metadata_keys[] = {
	QUOTA_PROJECT,
	{ NULL, NULL },
};

static const struct credential_key_doc no_keys[] = {
	{ NULL, NULL },
};

#define ENTRA "entra"
#define AWS "aws-rds, aws-dsql"
#define GCP "cloudsql, alloydb"

const struct credential_type_doc credential_type_docs[] = {
	{ "azure-managed-identity", ENTRA,
	  "The managed identity of the VM, App Service, Functions or Container "
	  "Apps the pooler runs on (IDENTITY_ENDPOINT and IDENTITY_HEADER when set, else IMDS).",
	  managed_keys, "type = azure-managed-identity\n;client_id = 00000000-0000-0000-0000-000000000000" },
	{ "azure-client-secret", ENTRA, "An application (service principal) with a client secret.",
	  secret_keys,
	  "type = azure-client-secret\ntenant_id = 00000000-0000-0000-0000-000000000000\n"
	  "client_id = 00000000-0000-0000-0000-000000000000\nclient_secret_file = /etc/tokenbouncer/entra-secret" },
	{ "azure-client-certificate", ENTRA, "An application with a certificate.", cert_keys,
	  "type = azure-client-certificate\ntenant_id = 00000000-0000-0000-0000-000000000000\n"
	  "client_id = 00000000-0000-0000-0000-000000000000\ncertificate_file = /etc/tokenbouncer/entra-app.pem" },
	{ "azure-workload-identity", ENTRA,
	  "AKS workload identity: a federated service account token exchanged "
	  "for an Entra token.",
	  workload_keys, "type = azure-workload-identity" },
	{ "azure-cli", ENTRA, "The signed-in Azure CLI (az account get-access-token), for development.",
	  cli_keys, "type = azure-cli" },
	{ "azure-default", ENTRA,
	  "DefaultAzureCredential's order: environment, workload identity, managed "
	  "identity, Azure CLI; it sticks to the first source that answers.",
	  azure_default_keys, "type = azure-default" },
	{ "aws-default", AWS,
	  "The AWS SDKs' default chain: environment, assume-role profile, web identity, shared "
	  "files, credential_process, container, EC2 instance metadata.",
	  aws_default_keys, "type = aws-default" },
	{ "aws-static", AWS, "Fixed access keys.", aws_static_keys,
	  "type = aws-static\naccess_key_id = AKIAEXAMPLEEXAMPLE00\n"
	  "secret_access_key_file = /etc/tokenbouncer/aws-secret" },
	{ "aws-profile", AWS,
	  "A profile of the shared files only (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), "
	  "role_arn + source_profile chains and credential_process included.",
	  aws_profile_keys, "type = aws-profile\nprofile = db" },
	{ "aws-web-identity", AWS,
	  "EKS IRSA and other OIDC federation: AssumeRoleWithWebIdentity with a token "
	  "file.",
	  aws_web_keys, "type = aws-web-identity" },
	{ "aws-assume-role", AWS, "AssumeRole, signed with another credential.", aws_assume_keys,
	  "type = aws-assume-role\nrole_arn = arn:aws:iam::123456789012:role/db-connect" },
	{ "aws-process", AWS, "An external program, as credential_process.", aws_process_keys,
	  "type = aws-process\ncommand = /usr/local/bin/aws-creds --profile db" },
	{ "aws-container", AWS,
	  "ECS task roles and EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI or "
	  "_RELATIVE_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]).",
	  no_keys, "type = aws-container" },
	{ "aws-imds", AWS, "The EC2 instance profile (IMDSv2, with v1 fallback).", no_keys,
	  "type = aws-imds" },
	{ "gcp-default", GCP,
	  "Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, else gcloud's "
	  "application_default_credentials.json (CLOUDSDK_CONFIG, default ~/.config/gcloud), else the metadata "
	  "server (GCE_METADATA_HOST, GCE_METADATA_IP, NO_GCE_CHECK).",
	  gcp_default_keys, "type = gcp-default" },
	{ "gcp-service-account", GCP, "A service account key file: the JWT-bearer grant signed RS256.",
	  gcp_sa_keys, "type = gcp-service-account\nkey_file = /etc/tokenbouncer/sa-key.json" },
	{ "gcp-authorized-user", GCP, "gcloud user credentials: the refresh-token grant.", gcp_user_keys,
	  "type = gcp-authorized-user\nfile = /etc/tokenbouncer/adc.json" },
	{ "gcp-impersonate", GCP,
	  "Service account impersonation through IAM Credentials generateAccessToken.", gcp_imp_keys,
	  "type = gcp-impersonate\ntarget_principal = db-sa@my-project.iam.gserviceaccount.com" },
	{ "gcp-metadata", GCP, "The GCE, Cloud Run or GKE metadata server's service account.",
	  gcp_metadata_keys, "type = gcp-metadata" },
};

const size_t credential_type_doc_count = sizeof(credential_type_docs) / sizeof(credential_type_docs[0]);

static const char *const md_intro =
	"\n"
	"## [credential.NAME]\n"
	"\n"
	"An alias with `auth=entra`, `auth=aws-rds`, `auth=aws-dsql`, `auth=cloudsql` or `auth=alloydb` "
	"names a credential with "
	"`credential=NAME`; the section `[credential.NAME]` says how the pooler gets the identity it "
	"asks tokens for. Several aliases may share one credential. `type` is required; the other keys "
	"depend on it, and a key the type does not know is an error. Secrets are best kept in files "
	"(`*_file`) or the environment (`*_env`). See doc/tokens.md for how tokens are kept and "
	"refreshed.\n"
	"\n"
	"```ini\n"
	"[databases]\n"
	"orders = host=orders.postgres.database.azure.com dbname=orders user=orders-app auth=entra credential=app\n"
	"\n"
	"[credential.app]\n"
	"type = azure-managed-identity\n"
	"```\n";

void credential_doc_print_md(FILE *f)
{
	fputs(md_intro, f);
	for (size_t i = 0; i < credential_type_doc_count; i++) {
		const struct credential_type_doc *t = &credential_type_docs[i];
		fprintf(f, "\n### type = %s\n\n%s For `auth=` %s.\n\n", t->type, t->doc, t->methods);
		if (!t->keys[0].key) {
			fputs("No keys besides `type`: the source is configured by its environment variables.\n",
			      f);
			continue;
		}
		fputs("| Key | Description |\n|---|---|\n", f);
		for (const struct credential_key_doc *k = t->keys; k->key; k++)
			fprintf(f, "| `%s` | %s |\n", k->key, k->doc);
	}
}

/* One example alias per token method: Entra, AWS RDS, Aurora DSQL. */
void credential_doc_print_sample_aliases(FILE *f)
{
	fputs(";; Token aliases name a [credential.NAME] section (see the reference for every type):\n"
	      ";sales = host=sales.postgres.database.azure.com dbname=sales user=sales-app auth=entra credential=azure_app\n"
	      ";billing = host=billing.abc123.us-east-1.rds.amazonaws.com dbname=billing user=billing_app auth=aws-rds credential=aws\n"
	      ";ledger = host=abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws auth=aws-dsql credential=aws\n"
	      ";reports = host=10.20.0.5 dbname=reports auth=cloudsql credential=gcp sslmode=verify-ca\n"
	      ";orders = instance=my-project:us-central1:orders dbname=orders auth=cloudsql enable_iam_auth=1 credential=gcp\n",
	      f);
}

/* The credential sections the example aliases name. */
void credential_doc_print_sample_sections(FILE *f)
{
	static const char *const shown[][2] = {
		{ "azure_app", "azure-client-secret" },
		{ "aws", "aws-default" },
		{ "gcp", "gcp-default" },
	};
	for (size_t s = 0; s < sizeof(shown) / sizeof(shown[0]); s++) {
		for (size_t i = 0; i < credential_type_doc_count; i++) {
			const struct credential_type_doc *t = &credential_type_docs[i];
			if (strcmp(t->type, shown[s][1]) != 0)
				continue;
			fprintf(f, "\n;[credential.%s]\n", shown[s][0]);
			for (const char *p = t->example; *p;) {
				const char *nl = strchr(p, '\n');
				size_t n = nl ? (size_t)(nl - p) : strlen(p);
				fprintf(f, "%s%.*s\n", p[0] == ';' ? "" : ";", (int)n, p);
				p += n + (nl ? 1 : 0);
			}
		}
	}
}
