from perfmodel.cli.main import run

run()
