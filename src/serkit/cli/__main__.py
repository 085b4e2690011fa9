from serkit.cli import app

app()
