from krypton.cli.main import app

app()
