"""The worked example of reference section 2.9 (T=10, inputs [1, 4, 6, 8]), shared by several test files.

8/4 = 2 leaves [1, 6, 2]; 6-1 = 5 leaves [2, 5]; 2*5 = 10. `ANSWER_PATH` is the answer path from
#0 that the resumed parent writes after its successful join (12 lines).
"""

ANSWER_PATH = """Moving to Node #0
Current State: 10:[1, 4, 6, 8], Operations: []
Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]
Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2
Moving to Node #0,0
Current State: 10:[1, 6, 2], Operations: ['8/4=2']
Exploring Operation: 6-1=5, Resulting Numbers: [2, 5]
Generated Node #0,0,0: 10:[2, 5] Operation: 6-1=5
Moving to Node #0,0,0
Current State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']
Exploring Operation: 2*5=10, Resulting Numbers: [10]
10,10 equal: Goal Reached"""
