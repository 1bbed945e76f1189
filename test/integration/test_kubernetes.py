"""deploy/kubernetes: every kustomization builds (kubectl kustomize, offline), every object
passes a schema check against the Kubernetes API models of python3-kubernetes (unknown fields,
types, required fields), and the manifests agree with the configuration they mount: ports, the
paths of the config and userlist, probe URLs, selectors, the shutdown hook and grace period. The
mounted tokenbouncer.ini and userlist load with the real binary (tokenbouncer --check)."""
import os
import re
import shutil
import subprocess

import pytest

import pooler as pooler_mod
from pooler import REPO_ROOT, SAN_ENV, binary

yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed")
K8S = os.path.join(REPO_ROOT, "deploy", "kubernetes")
DIRS = ["base", "overlays/aks-workload-identity", "overlays/eks-irsa", "overlays/eks-pod-identity",
        "overlays/gke-workload-identity"]

# What the cloud's identity webhook or agent puts into the pod, per kustomization
IDENTITY_ENV = {
    "base": {"AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
             "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000000",
             "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"},
    "overlays/eks-irsa": {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/tokenbouncer-db-connect",
                          "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/token"},
    "overlays/eks-pod-identity": {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
                                  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/secrets/pods.eks.amazonaws.com/token"},
}
IDENTITY_ENV["overlays/aks-workload-identity"] = IDENTITY_ENV["base"]
# GKE injects nothing: the metadata server is at its fixed address for every pod
IDENTITY_ENV["overlays/gke-workload-identity"] = {}


def build(d):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.fail("kubectl is not installed (scripts/deps.sh installs Debian's kubernetes-client)")
    res = subprocess.run([kubectl, "kustomize", os.path.join(K8S, d)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [o for o in yaml.safe_load_all(res.stdout) if o]


def by_kind(objs):
    out = {}
    for o in objs:
        assert o["kind"] not in out, "two %s objects" % o["kind"]
        out[o["kind"]] = o
    return out


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("deploy/kubernetes is tokenbouncer's")


# ---------------------------------------------------------------- schema check
MODELS = {("v1", "ServiceAccount"): "V1ServiceAccount", ("v1", "ConfigMap"): "V1ConfigMap",
          ("v1", "Secret"): "V1Secret", ("v1", "Service"): "V1Service", ("apps/v1", "Deployment"): "V1Deployment",
          ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
          # python3-kubernetes 22 predates autoscaling/v2; v2beta2 has the same fields
          ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler"}


def check_against_model(client, value, typ, where, errors):
    """Every key known to the model, every value of the model's type."""
    m = re.match(r"list\[(.*)\]$", typ)
    if m:
        if not isinstance(value, list):
            errors.append("%s: expected a list" % where)
            return
        for i, v in enumerate(value):
            check_against_model(client, v, m.group(1), "%s[%d]" % (where, i), errors)
        return
    m = re.match(r"dict\(str, (.*)\)$", typ)
    if m:
        if not isinstance(value, dict):
            errors.append("%s: expected a map" % where)
            return
        for k, v in value.items():
            check_against_model(client, v, m.group(1), "%s.%s" % (where, k), errors)
        return
    simple = {"str": str, "int": int, "bool": bool, "float": (int, float)}
    if typ in simple:
        if not isinstance(value, simple[typ]) or (typ == "int" and isinstance(value, bool)):
            errors.append("%s: expected %s, got %r" % (where, typ, value))
        return
    if typ in ("object", "datetime"):
        return
    model = getattr(client, typ)
    if not isinstance(value, dict):
        errors.append("%s: expected a %s object" % (where, typ))
        return
    by_json = {v: k for k, v in model.attribute_map.items()}
    for k, v in value.items():
        if k not in by_json:
            errors.append("%s: unknown field %r for %s" % (where, k, typ))
            continue
        check_against_model(client, v, model.openapi_types[by_json[k]], "%s.%s" % (where, k), errors)


@pytest.mark.parametrize("d", DIRS)
def test_objects_match_the_api_schema(d):
    client = pytest.importorskip("kubernetes.client", reason="python3-kubernetes is not installed")
    api = client.ApiClient()
    for o in build(d):
        key = (o["apiVersion"], o["kind"])
        assert key in MODELS, "unexpected object %s" % (key,)
        errors = []
        check_against_model(client, {k: v for k, v in o.items()}, MODELS[key], o["kind"], errors)
        assert not errors, "\n".join(errors)
        # required fields: the models' setters refuse None where the API requires a value
        api._ApiClient__deserialize(o, MODELS[key])


def test_schema_check_catches_mistakes():
    """The check above can fail: a misspelt field, a wrong type, a missing required field."""
    client = pytest.importorskip("kubernetes.client", reason="python3-kubernetes is not installed")
    dep = by_kind(build("base"))["Deployment"]
    errors = []
    c = dep["spec"]["template"]["spec"]["containers"][0]
    bad = dict(dep, spec=dict(dep["spec"], template=dict(dep["spec"]["template"], spec=dict(
        dep["spec"]["template"]["spec"], containers=[dict(c, readinesProbe=c["readinessProbe"],
                                                          ports=[{"containerPort": "6432"}])]))))
    check_against_model(client, bad, "V1Deployment", "Deployment", errors)
    assert any("unknown field 'readinesProbe'" in e for e in errors), errors
    assert any("expected int, got '6432'" in e for e in errors), errors
    with pytest.raises(ValueError):
        client.ApiClient()._ApiClient__deserialize({"spec": {"template": {}}}, "V1Deployment")


# ---------------------------------------------------------------- manifests vs configuration
def ini_settings(text):
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        out[(section, k.strip())] = v.strip()
    return out


def mount_path_of(container, volumes, kind, name):
    vol = [v for v in volumes if v.get(kind, {}).get("name" if kind == "configMap" else "secretName") == name]
    assert len(vol) == 1, "no %s volume for %s" % (kind, name)
    mounts = [m for m in container["volumeMounts"] if m["name"] == vol[0]["name"]]
    assert len(mounts) == 1
    return mounts[0]["mountPath"]


@pytest.mark.parametrize("d", DIRS)
def test_manifests_match_the_config_they_mount(d, tmp_path):
    objs = by_kind(build(d))
    dep, svc, cm, sec = objs["Deployment"], objs["Service"], objs["ConfigMap"], objs["Secret"]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    ini_text = cm["data"]["tokenbouncer.ini"]
    s = ini_settings(ini_text)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["postgres"] == int(s[("tokenbouncer", "listen_port")])
    assert s[("tokenbouncer", "listen_addr")] in ("0.0.0.0", "*"), "the Service cannot reach a loopback listener"
    mhost, _, mport = s[("tokenbouncer", "metrics_listen")].rpartition(":")
    assert ports["metrics"] == int(mport) and mhost in ("0.0.0.0", "*")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        assert c[probe]["httpGet"] == {"path": path, "port": "metrics"}, (probe, c[probe])
    # the config file the pooler is told to read is the ConfigMap's, the userlist the Secret's
    cfg_dir = mount_path_of(c, pod["volumes"], "configMap", cm["metadata"]["name"])
    assert c["args"] == [cfg_dir + "/tokenbouncer.ini"]
    sec_dir = mount_path_of(c, pod["volumes"], "secret", sec["metadata"]["name"])
    assert s[("tokenbouncer", "auth_file")] == sec_dir + "/userlist.txt"
    assert "userlist.txt" in sec["data"]
    assert not sec_dir.startswith(cfg_dir + "/"), "a mount inside a read-only ConfigMap volume"
    # Service, PDB and HPA point at this Deployment's pods
    labels = dep["spec"]["template"]["metadata"]["labels"]
    for sel in (svc["spec"]["selector"], objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
                dep["spec"]["selector"]["matchLabels"]):
        assert all(labels.get(k) == v for k, v in sel.items()), (sel, labels)
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= set(ports)
    hpa = objs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (hpa["kind"], hpa["name"]) == ("Deployment", dep["metadata"]["name"])
    assert objs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] > objs["PodDisruptionBudget"]["spec"]["minAvailable"]
    # shutdown: preStop sends SIGINT (finish transactions, then exit) and waits within the grace period
    hook = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    assert "kill -INT 1" in hook
    waits = sum(int(n) for n in re.findall(r"sleep (\d+)", hook.split("kill")[0])) + \
        int(re.search(r"seq 1 (\d+)", hook).group(1))
    assert pod["terminationGracePeriodSeconds"] > waits, (pod["terminationGracePeriodSeconds"], waits)
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == objs["ServiceAccount"]["metadata"]["name"]

    # the configuration loads: paths of the pod mapped to files here, the identity's environment set
    import base64
    (tmp_path / "userlist.txt").write_bytes(base64.b64decode(sec["data"]["userlist.txt"]))
    local = ini_text.replace(sec_dir + "/userlist.txt", str(tmp_path / "userlist.txt"))
    (tmp_path / "tokenbouncer.ini").write_text(local)
    env = dict(os.environ)
    env.update(SAN_ENV)
    env.update(IDENTITY_ENV[d])
    res = subprocess.run([binary(), "--check", str(tmp_path / "tokenbouncer.ini")], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_overlays_set_the_workload_identity():
    sa = by_kind(build("overlays/aks-workload-identity"))
    assert "azure.workload.identity/client-id" in sa["ServiceAccount"]["metadata"]["annotations"]
    assert sa["Deployment"]["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    irsa = by_kind(build("overlays/eks-irsa"))
    assert irsa["ServiceAccount"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert "type = aws-web-identity" in irsa["ConfigMap"]["data"]["tokenbouncer.ini"]
    pi = by_kind(build("overlays/eks-pod-identity"))
    assert "type = aws-container" in pi["ConfigMap"]["data"]["tokenbouncer.ini"]
    gke = by_kind(build("overlays/gke-workload-identity"))
    gsa = gke["ServiceAccount"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert gsa.endswith(".iam.gserviceaccount.com")
    assert gke["Deployment"]["spec"]["template"]["spec"]["nodeSelector"] == {
        "iam.gke.io/gke-metadata-server-enabled": "true"}
    ini = gke["ConfigMap"]["data"]["tokenbouncer.ini"]
    assert "type = gcp-metadata" in ini
    # the IAM user the aliases log in as is the annotated Google service account, as Cloud SQL names it
    assert "user=" + gsa[:-len(".gserviceaccount.com")] in ini
