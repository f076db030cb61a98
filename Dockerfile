FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
# Static files are part of the image: hashed, compressed, served by WhiteNoise from the web process.
RUN python manage.py collectstatic --noinput -v0
EXPOSE 8000
ENV BIND=0.0.0.0:8000
CMD ["gunicorn", "-c", "hogsend/gunicorn.conf.py", "hogsend.wsgi"]
