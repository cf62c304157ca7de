# Parses and compiles a large stdlib module (argparse): the allocation pattern of CPython's compiler.
import ast, inspect, argparse
for module in (argparse,):
    source = inspect.getsource(module)
    tree = ast.parse(source)
    code = compile(tree, module.__name__, 'exec')
    print(module.__name__, len(source), sum(1 for _ in ast.walk(tree)))
