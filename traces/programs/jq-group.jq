# 10,000 generated records, grouped and summarised: object, array and string churn in jq.
[range(0; 10000) | {id: ., name: ("user" + tostring), tags: [range(0; . % 7) | tostring]}]
| group_by(.id % 13)
| map({key: (.[0].id % 13), count: length, tags: (map(.tags | length) | add)})
