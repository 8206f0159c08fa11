#!/usr/bin/env bash
# Request Tracker 5 (Debian 12 packages, SQLite) on 127.0.0.1 for the connector tests.
#
# Installs RT non-interactively (preseeded debconf), then runs an instance of its own that shares
# nothing with Debian's: everything lives in the state folder -- its own site config
# (RT_SITE_CONFIG; RT_SITE_CONFIG_DIR points at an empty folder so Debian's
# /etc/request-tracker5/RT_SiteConfig.d/*.pm are not read), its own SQLite database (created with
# rt-setup-database-5), its own var/cache folders and its own port. Several instances (different
# SLA_RT_PORT and SLA_RT_STATE) can run side by side; Debian's files are left untouched.
# rt-server runs under libfaketime (the tests move its clock by writing $SLA_RT_STATE/faketime.rc);
# the test set-up is created: queue "Support", a "Severity" custom field (1-4), an agent and
# customers with an Organization. Idempotent: each step is skipped when already done. Prints the
# server URL on stdout (last line).
#
#   scripts/request_tracker.sh            install if needed, start if not running, set up
#   scripts/request_tracker.sh --stop     stop the server this script started (for this state folder)
#
# Environment: SLA_RT_PORT (default 8080), SLA_RT_STATE (default /var/tmp/sla-rt: config, database,
# pid file, log, faketime file). Needs root (apt-get, runuser).
set -euo pipefail

PORT="${SLA_RT_PORT:-8080}"
STATE="${SLA_RT_STATE:-/var/tmp/sla-rt}"
case "$STATE" in /*) ;; *) STATE="$PWD/$STATE" ;; esac
FAKETIME_FILE="$STATE/faketime.rc"
PIDFILE="$STATE/rt-server.pid"
LOG="$STATE/rt-server.log"
SITE_CONFIG="$STATE/etc/RT_SiteConfig.pm"
SITE_CONFIG_DIR="$STATE/etc/RT_SiteConfig.d"   # stays empty: masks Debian's RT_SiteConfig.d
DB_DIR="$STATE/db"
DB="$DB_DIR/rtdb"
VAR="$STATE/var"
URL="http://127.0.0.1:$PORT"
RT_LIB=/usr/share/request-tracker5/lib
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
# every RT program below runs as www-data with this environment
RT_ENV=(env RT_SITE_CONFIG="$SITE_CONFIG" RT_SITE_CONFIG_DIR="$SITE_CONFIG_DIR")

log() { echo "request_tracker: $*" >&2; }

# rt-server was started with setsid: its pid is its process group (runuser, perl and the workers)
server_alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
stop_server() {
  if server_alive; then
    local pid; pid="$(cat "$PIDFILE")"
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true; }
    log "stopped rt-server (pid $pid)"
  fi
  rm -f "$PIDFILE"
}

if [ "${1:-}" = "--stop" ]; then
  stop_server
  exit 0
fi

[ "$(id -u)" -eq 0 ] || { log "must run as root (apt-get, runuser)"; exit 1; }

# ---- 1. install ------------------------------------------------------------------------
if [ ! -x "$RT_SERVER" ] || ! dpkg -s rt5-db-sqlite >/dev/null 2>&1 || [ -z "$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null)" ]; then
  log "installing Request Tracker 5 from Debian (about 35 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  debconf-set-selections <<'P'
request-tracker5 request-tracker5/rtname string rt.example.test
request-tracker5 request-tracker5/organization string example.test
request-tracker5 request-tracker5/correspondaddress string rt@example.test
request-tracker5 request-tracker5/commentaddress string rt-comment@example.test
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1:8080
request-tracker5 request-tracker5/webpath string /rt
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/initial-root-password password password
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
P
  # msmtp-mta satisfies "default-mta | mail-transport-agent" without a daemon
  apt-get install -y -qq --no-install-recommends \
    request-tracker5 rt5-db-sqlite rt5-standalone msmtp-mta faketime curl >/dev/null
fi
FAKETIME_LIB="$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -n1)"

# ---- 2. this instance's own config, folders and database ---------------------------------
# earlier versions of this script wrote into Debian's config: take that back out
OLD_SITE=/etc/request-tracker5/RT_SiteConfig.d/99-sla-test.pm
[ -e "$OLD_SITE" ] && { rm -f "$OLD_SITE"; log "removed $OLD_SITE (written by an earlier version)"; }

mkdir -p "$STATE" "$SITE_CONFIG_DIR" "$DB_DIR" "$VAR/mason_data" "$VAR/session_data"
chmod 755 "$STATE" "$STATE/etc" "$SITE_CONFIG_DIR"
chown -R www-data: "$DB_DIR" "$VAR"
chmod 750 "$DB_DIR" "$VAR"
rm -f "$SITE_CONFIG_DIR"/*.pm

cat > "$SITE_CONFIG.new" <<C
# written by scripts/request_tracker.sh: the RT instance in $STATE (port $PORT)
Set(\$rtname, 'rt.example.test');
Set(\$Organization, 'example.test');
Set(\$CorrespondAddress, 'rt@example.test');
Set(\$CommentAddress, 'rt-comment@example.test');
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $PORT);
Set(\$WebPath, '');
Set(\$WebBaseURL, 'http://127.0.0.1:$PORT');
Set(\$DatabaseType, 'SQLite');
Set(\$DatabaseName, '$DB');
Set(\$DatabaseUser, '');
Set(\$DatabasePassword, '');
Set(\$LogToSyslog, undef);
Set(\$LogToFile, undef);
Set(\$LogToSTDERR, 'warning');
Set(\$Timezone, 'UTC');
Set(\$MailCommand, 'mbox');   # no outgoing mail; mbox files go to \$RT::VarPath
# RT's own folders (compiled Mason components, web sessions, mbox, temp files), not Debian's
\$RT::VarPath = '$VAR';
\$RT::MasonDataDir = '$VAR/mason_data';
\$RT::MasonSessionDir = '$VAR/session_data';
1;
C
if ! cmp -s "$SITE_CONFIG.new" "$SITE_CONFIG"; then mv "$SITE_CONFIG.new" "$SITE_CONFIG"; RESTART=1; else rm -f "$SITE_CONFIG.new"; fi
chmod 644 "$SITE_CONFIG"

# the database: created once; the marker is written only after a complete init
if [ ! -f "$DB_DIR/.initialised" ]; then
  log "creating the database $DB"
  rm -f "$DB" "$DB"-journal
  runuser -u www-data -- "${RT_ENV[@]}" /usr/sbin/rt-setup-database-5 --action init >&2 \
    || { log "rt-setup-database-5 --action init failed"; exit 1; }
  touch "$DB_DIR/.initialised"
  RESTART=1
fi

# ---- 3. start under libfaketime --------------------------------------------------------
[ -f "$FAKETIME_FILE" ] || date -u '+%Y-%m-%d %H:%M:%S' > "$FAKETIME_FILE"
chmod 666 "$FAKETIME_FILE"

running() { curl -s -o /dev/null -m 5 "$URL/" ; }
# a server started by this script with an older config (or an older script): restart it
if [ -n "${RESTART:-}" ]; then stop_server; fi
if server_alive && ! running; then stop_server; fi
if ! server_alive; then
  if running; then log "port $PORT already answers but not with the rt-server of $STATE; choose another SLA_RT_PORT"; exit 1; fi
  log "starting rt-server on $URL (state: $STATE, clock: $FAKETIME_FILE)"
  setsid runuser -u www-data -- "${RT_ENV[@]}" \
    FAKETIME_TIMESTAMP_FILE="$FAKETIME_FILE" FAKETIME_NO_CACHE=1 LD_PRELOAD="$FAKETIME_LIB" \
    "$RT_SERVER" --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 </dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 120); do running && break; server_alive || break; sleep 0.5; done
  running || { log "rt-server did not answer on $URL; log:"; tail -n 40 "$LOG" >&2; exit 1; }
fi

# ---- 4. queue, Severity field, agent, customers (RT's Perl API, as www-data) -------------
runuser -u www-data -- "${RT_ENV[@]}" perl -I"$RT_LIB" - <<'PERL' >&2
use strict; use warnings;
use RT -init;
my $root = RT::CurrentUser->new(RT->SystemUser); $root->Load('root');
my $q = RT::Queue->new($root); $q->Load('Support');
unless ($q->id) {
  my ($ok, $msg) = $q->Create(Name => 'Support', Description => 'Customer support',
      CorrespondAddress => 'support@example.test', CommentAddress => 'support-comment@example.test');
  die "queue: $msg" unless $ok;
}
my $cf = RT::CustomField->new($root);
$cf->LoadByName(Name => 'Severity', LookupType => RT::Ticket->CustomFieldLookupType);
unless ($cf->id) {
  my ($ok, $msg) = $cf->Create(Name => 'Severity', Type => 'Select', MaxValues => 1,
      LookupType => RT::Ticket->CustomFieldLookupType);
  die "cf: $msg" unless $ok;
  $cf->AddValue(Name => $_, SortOrder => $_) for 1..4;
}
$cf->AddToObject($q) unless $cf->IsAdded($q->id);
my $agent = RT::User->new($root); $agent->Load('agent1');
unless ($agent->id) {
  my ($ok, $msg) = $agent->Create(Name => 'agent1', EmailAddress => 'agent1@example.test',
      RealName => 'Agent One', Privileged => 1, Password => 'agentpass1');
  die "agent: $msg" unless $ok;
}
for my $right (qw(SeeQueue ShowTicket CreateTicket ReplyToTicket CommentOnTicket ModifyTicket OwnTicket
                  TakeTicket SeeCustomField ModifyCustomField ShowTicketComments)) {
  $agent->PrincipalObj->GrantRight(Right => $right, Object => $q);
}
# the connector's read-only admin: sees users' Organization (admins only)
my $sync = RT::User->new($root); $sync->Load('slasync');
unless ($sync->id) {
  my ($ok, $msg) = $sync->Create(Name => 'slasync', EmailAddress => 'slasync@example.test',
      RealName => 'SLA sync', Privileged => 1, Password => 'syncpass1');
  die "sync user: $msg" unless $ok;
}
$sync->PrincipalObj->GrantRight(Right => $_, Object => RT->System)
  for qw(SeeQueue ShowTicket ShowTicketComments SeeCustomField AdminUsers ShowUserHistory);
my $everyone = RT::Group->new($root); $everyone->LoadSystemInternalGroup('Everyone');
$everyone->PrincipalObj->GrantRight(Right => $_, Object => $q) for qw(CreateTicket ReplyToTicket);
my $req = RT::Group->new($root); $req->LoadRoleGroup(Object => RT->System, Name => 'Requestor');
$req->PrincipalObj->GrantRight(Right => $_, Object => $q) for qw(ShowTicket ReplyToTicket SeeQueue);
for my $c (['carol@acme.test', 'Carol Acme', 'Acme Corp'], ['dave@globex.test', 'Dave Globex', 'Globex Inc'],
           ['erin@initech.test', 'Erin Initech', 'Initech'], ['nobody@nowhere.test', 'No Org', '']) {
  my $u = RT::User->new($root); $u->LoadByEmail($c->[0]);
  next if $u->id;
  my ($ok, $msg) = $u->Create(Name => $c->[0], EmailAddress => $c->[0], RealName => $c->[1],
      Organization => $c->[2], Privileged => 0, Password => 'custpass1');
  die "customer $c->[0]: $msg" unless $ok;
}
print "request_tracker: set up (queue ", $q->id, ", Severity field ", $cf->id, ")\n";
PERL

echo "$URL"
