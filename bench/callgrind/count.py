# Instructions and allocations per message from a callgrind dump (bench/callgrind/run.sh):
# count.py DUMP UNITS MODE. Allocations are the calls to malloc, calloc and realloc.
import sys, re
path, units, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
total = 0; allocs = 0; cfn = None
names = {}
alloc_fns = ('malloc', 'calloc', 'realloc')
for line in open(path):
    if line.startswith('summary:') or line.startswith('totals:'):
        total = int(line.split()[1])
    m = re.match(r'(c?fn)=\((\d+)\)(?: (.*))?', line)
    if m:
        kind, idx, name = m.groups()
        if name: names[idx] = name.strip()
        if kind == 'cfn': cfn = names.get(idx)
        continue
    if line.startswith('calls=') and cfn is not None:
        n = int(line.split('=')[1].split()[0])
        if cfn in alloc_fns or cfn.startswith('malloc') :
            allocs += n
        cfn = None
# calls from any fn to malloc are counted once per call site: sums all
if mode == 'bcast': units *= int(sys.argv[4]) if len(sys.argv) > 4 else 1
print(f"{path}: Ir {total:,}  units {units}  Ir/unit {total/units:,.0f}  allocs/unit {allocs/units:.2f}")
