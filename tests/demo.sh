#!/usr/bin/env bash
#  The ketenpost demo: builds, makes a Twente demo region in a temporary
#  directory, starts ketenpostd on 127.0.0.1 and walks through the message
#  flows of the chain partners. Leaves the region and the broker's data in
#  place and prints where, so you can look at the log and run the tools.
#  All persons are fictitious.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bash tests/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

bin=$top/build
demo=$(mktemp -d /tmp/ketenpost-demo-XXXXXX)
region=$demo/region
data=$demo/data
broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null; true; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" | sed "s#$bin/[a-z]*/##g; s#$demo#\$DEMO#g"; }

step "A region: the broker's keys, the registration key and the chain partners of Twente"
keys=$bin/keys/kp-keys
"$keys" init --region "$region" --name ketenpost-twente >/dev/null
show kp-keys region-key --region "$region"
"$keys" region-key --region "$region"
echo "(every partner gets registration.pub out of band: it vouches for the partners' keys)"
twente="GM0141 GM0147 GM1774 GM0153 GM0158 GM0163 GM0164 GM1735 GM0168 GM0173 GM1742 GM0183 GM1700 GM0189"
"$keys" add --region "$region" --id police-oost --role police --name "Politie Oost-Nederland, basisteam Enschede" >/dev/null
"$keys" add --region "$region" --id vt-twente --role veilig_thuis --name "Veilig Thuis Twente" \
    $(for code in $twente; do printf -- '--address %s ' "$code"; done) >/dev/null
"$keys" add --region "$region" --id lt-enschede --role local_team --name "Wijkteam Enschede" --address GM0153 >/dev/null
"$keys" add --region "$region" --id lp-enschede --role leerplicht --name "Leerplicht Enschede" --address GM0153 >/dev/null
"$keys" add --region "$region" --id audit-twente --role auditor --name "Privacy officer Twente" >/dev/null
"$keys" add --region "$region" --id school-12ab00 --role school --name "Basisschool De Esch" --address 12AB00 --covenant >/dev/null
show kp-keys list --region "$region"
"$keys" list --region "$region"

step "The broker: ketenpostd on 127.0.0.1"
cat > "$demo/ketenpostd.cfg" <<CFG
server
    name = ketenpost-twente
security
    mechanism = curve
    region = $region
bind
    endpoint = tcp://127.0.0.1:*
log
    dir = $data
policy
    school-route = leerplicht
CFG
"$bin/broker/ketenpostd" --config "$demo/ketenpostd.cfg" 2>"$demo/ketenpostd.log" &
broker_pid=$!
for _ in $(seq 1 100); do
    [ -s "$data/endpoint" ] && break
    kill -0 "$broker_pid" 2>/dev/null || { cat "$demo/ketenpostd.log"; exit 1; }
    sleep 0.1                       # poll the ready file, 10 s deadline
done
endpoint=$(cat "$data/endpoint")
echo "ketenpostd is listening on $endpoint (pid $broker_pid)"

#  kp-send / kp-inbox as a given partner
as() {
    local partner=$1 tool=$2; shift 2
    "$bin/clients/$tool" --broker "$endpoint" --broker-cert "$region/broker" \
        --cert "$region/secrets/${partner}_secret" \
        --region-key "$region/registration.pub" "$@"
}
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }

step "1. Police → Veilig Thuis: a signal (zorgmelding) after a call-out at night"
show kp-send --type signal --to municipality:GM0153 --body '{...}'
receipt=$(as police-oost kp-send --type signal --to municipality:GM0153 --purpose jw-art-7 \
    --user agent-4711 --body '{"kind":"MELDING","violence_types":["PARTNER_VIOLENCE","CHILD_ABUSE"],
    "urgency":"ACUTE","incident_time":"2026-11-21T23:40:00Z","municipality":"GM0153",
    "address":"Voorbeeldstraat 1, Enschede","persons":[{"role":"VICTIM","name":"Anna Demo",
    "date_of_birth":"1990-04-01"},{"role":"CHILD_PRESENT","name":"Sam Demo","date_of_birth":"2017-09-12"}],
    "children_present":1,"sender_reference":"PL0600-2026112199","contact_person":"wachtcommandant",
    "narrative":"Demo: call-out for a domestic dispute; child present."}')
echo "receipt: $receipt"
signal_id=$(echo "$receipt" | field id)
show kp-inbox "(as vt-twente)" --count 1
as vt-twente kp-inbox --count 1

step "   Veilig Thuis → Police: feedback on the signal"
as vt-twente kp-send --type feedback --to partner:police-oost --reference "$signal_id" \
    --body '{"status":"FOLLOW_UP_STARTED","taken_over_by":"vt-twente"}'
show kp-inbox "(as police-oost)" --idle-exit 1500
as police-oost kp-inbox --idle-exit 1500

step "2. Veilig Thuis → local team: a referral, and its acceptance"
receipt=$(as vt-twente kp-send --type referral --to municipality:GM0153 \
    --body '{"case_id":"VT-2026-0815","safety_assessment":"SAFETY_STRUCTURAL",
    "safety_summary":"Demo: structural risk, no acute danger.","persons":[{"role":"CHILD_PRESENT",
    "name":"Sam Demo","date_of_birth":"2017-09-12"}],"family_informed":true,
    "first_contact_deadline":"2026-11-27"}')
echo "receipt: $receipt"
referral_id=$(echo "$receipt" | field id)
as lt-enschede kp-inbox --count 1
as lt-enschede kp-send --type feedback --to partner:vt-twente --reference "$referral_id" \
    --body '{"status":"ACCEPTED"}'
as vt-twente kp-inbox --idle-exit 1500

step "3. Handle with Care: police → leerplicht → school, before 08:30"
#  Tomorrow in Dutch time: overdue at 07:30, over at 18:00 that day
school_day=$(TZ=Europe/Amsterdam date -d tomorrow +%F)
receipt=$(as police-oost kp-send --type school_notification --to municipality:GM0153 \
    --body '{"child_name":"Sam Demo","date_of_birth":"2017-09-12","school_day":"'"$school_day"'",
    "lookup_hint":"7511 AB"}')
echo "receipt: $receipt"
notification_id=$(echo "$receipt" | field id)
as lp-enschede kp-inbox --count 1
echo "(leerplicht looks up the school of 7511 AB: 12AB00, and forwards without the hint)"
as lp-enschede kp-send --type school_notification --to school:12AB00 --reference "$notification_id" \
    --body '{"child_name":"Sam Demo","date_of_birth":"2017-09-12","code_words":"Handle with Care",
    "school_day":"'"$school_day"'"}'
show kp-inbox "(as school-12ab00)" --count 1 --read-receipt
as school-12ab00 kp-inbox --count 1 --read-receipt
echo "(leerplicht hears DELIVERED with the school's signed receipt, then the READ feedback)"
as lp-enschede kp-inbox --idle-exit 1500

step "4. Refused: a school may not send a referral"
show kp-send "(as school-12ab00)" --type referral --to municipality:GM0153
if as school-12ab00 kp-send --type referral --to municipality:GM0153 \
    --body '{"case_id":"X"}'; then
    echo "demo: the broker accepted a forbidden message" >&2
    exit 1
fi

step "5. The log on disk: the broker's only store, and it holds no readable body"
ls -l "$data/log" "$data/bodies"
show grep -r -a -c "'Sam Demo'" "$data" "(the child's name, summed over every file)"
hits=$( (grep -r -a -c "Sam Demo" "$data" || true) | awk -F: '{ sum += $NF } END { print sum + 0 }')
echo "$hits"
if [ "$hits" != 0 ]; then
    echo "demo: a body is readable in the broker's data" >&2
    exit 1
fi
echo "(bodies are sealed by the sender's library to the recipient's key: the broker stores only ciphertext)"

step "6. The auditor: fetch the log, verify it, find the signal, prove it is in the log"
audit() {
    "$bin/clients/kp-audit" "$@"
}
auditor=(--broker "$endpoint" --broker-cert "$region/broker" --cert "$region/secrets/audit-twente_secret")
show kp-audit fetch --dir '$DEMO/audit' --checkpoint-key checkpoint.pub "(as audit-twente)"
audit fetch --dir "$demo/audit" --checkpoint-key "$region/checkpoint.pub" "${auditor[@]}" \
    --save-checkpoint "$demo/audit-checkpoint.txt"
show kp-audit verify --dir '$DEMO/audit' --checkpoint-key checkpoint.pub
audit verify --dir "$demo/audit" --checkpoint-key "$region/checkpoint.pub" \
    --trusted "$demo/audit-checkpoint.txt"
show kp-audit replay --dir '$DEMO/audit' --id "$signal_id"
audit replay --dir "$demo/audit" --id "$signal_id"
show kp-audit prove --dir '$DEMO/audit' --id "$signal_id" "(as audit-twente)"
audit prove --dir "$demo/audit" --id "$signal_id" --checkpoint-key "$region/checkpoint.pub" \
    "${auditor[@]}"

kill "$broker_pid"
wait "$broker_pid" || true
broker_pid=""
step "7. The broker stopped and signed a last checkpoint: verify its own data directory"
show kp-audit verify --dir '$DEMO/data' --checkpoint-key checkpoint.pub
audit verify --dir "$data" --checkpoint-key "$region/checkpoint.pub" \
    --trusted "$demo/audit-checkpoint.txt"
step "Done"
cat <<EOF
The broker stopped cleanly. Everything is still there:
  region (keys, partners):  $region
  broker data (log):        $data
  the auditor's copy:       $demo/audit
  broker config:            $demo/ketenpostd.cfg
  broker's own log:         $demo/ketenpostd.log
Start it again with:  $bin/broker/ketenpostd --config $demo/ketenpostd.cfg
EOF
