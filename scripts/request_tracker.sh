#!/usr/bin/env bash
# Request Tracker 5 (Debian 12 packages, SQLite) on 127.0.0.1 for the connector tests.
#
# Installs RT non-interactively (preseeded debconf), applies the two fixes it needs to start
# (site config readable by www-data; loopback URL and no mail server), starts rt-server under
# libfaketime (the tests move its clock by writing FAKETIME_FILE) and creates the test set-up:
# queue "Support", a "Severity" custom field (1-4), an agent and customers with an Organization.
# Idempotent: each step is skipped when already done. Prints the server URL on stdout (last line).
#
#   scripts/request_tracker.sh            install if needed, start if not running, set up
#   scripts/request_tracker.sh --stop     stop the server this script started
#
# Environment: SLA_RT_PORT (default 8080), SLA_RT_STATE (default /var/tmp/sla-rt: pid file,
# log, faketime file). Needs root (apt-get, runuser).
set -euo pipefail

PORT="${SLA_RT_PORT:-8080}"
STATE="${SLA_RT_STATE:-/var/tmp/sla-rt}"
FAKETIME_FILE="$STATE/faketime.rc"
PIDFILE="$STATE/rt-server.pid"
LOG="$STATE/rt-server.log"
URL="http://127.0.0.1:$PORT"
RT_LIB=/usr/share/request-tracker5/lib
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server

log() { echo "request_tracker: $*" >&2; }

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill "$(cat "$PIDFILE")"; rm -f "$PIDFILE"; log "stopped"
  fi
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

# ---- 2. the two fixes ------------------------------------------------------------------
# debconf leaves RT_SiteConfig.pm root:root 0600: www-data cannot read it
chgrp www-data /etc/request-tracker5/RT_SiteConfig.pm
chmod 640 /etc/request-tracker5/RT_SiteConfig.pm
SITE=/etc/request-tracker5/RT_SiteConfig.d/99-sla-test.pm
cat > "$SITE.new" <<C
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $PORT);
Set(\$WebPath, '');
Set(\$WebBaseURL, 'http://127.0.0.1:$PORT');
Set(\$LogToSTDERR, 'warning');
Set(\$Timezone, 'UTC');
Set(\$MailCommand, 'mbox');   # no outgoing mail
1;
C
if ! cmp -s "$SITE.new" "$SITE"; then mv "$SITE.new" "$SITE"; RESTART=1; else rm -f "$SITE.new"; fi
chmod 644 "$SITE"

# ---- 3. start under libfaketime --------------------------------------------------------
mkdir -p "$STATE"
chmod 755 "$STATE"
[ -f "$FAKETIME_FILE" ] || date -u '+%Y-%m-%d %H:%M:%S' > "$FAKETIME_FILE"
chmod 666 "$FAKETIME_FILE"

running() { curl -s -o /dev/null -m 5 "$URL/" ; }
if [ -n "${RESTART:-}" ] && [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  kill "$(cat "$PIDFILE")"; sleep 1
fi
if ! running; then
  log "starting rt-server on $URL (clock: $FAKETIME_FILE)"
  setsid env FAKETIME_TIMESTAMP_FILE="$FAKETIME_FILE" FAKETIME_NO_CACHE=1 LD_PRELOAD="$FAKETIME_LIB" \
    runuser -u www-data -- "$RT_SERVER" --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 </dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 120); do running && break; sleep 0.5; done
  running || { log "rt-server did not answer on $URL; log:"; tail -n 40 "$LOG" >&2; exit 1; }
fi

# ---- 4. queue, Severity field, agent, customers (RT's Perl API, as www-data) -------------
runuser -u www-data -- perl -I"$RT_LIB" - <<'PERL' >&2
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
